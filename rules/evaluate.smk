# Evaluation of the un-unlearned baseline under each scenario, reported as method "original".


rule evaluate_original:
    input:
        experiment=rules.prepare_experiment.output.experiment,
        request=rules.forget_request.output.request,
        baseline=rules.baseline.output.model,
    output:
        run=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/original/run.json",
        outputs=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/original/outputs.npz",
    params:
        identity=identity,
        device=PLAN.device,
        code=CODE["evaluation"],
    threads: 1
    log:
        f"{RESULTS}/logs/evaluate_original/{{dataset}}_{{scenario}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_original/{{dataset}}_{{scenario}}_seed{{seed}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"
