# One job per (dataset, scenario, run, seed): the method starts from the model its setting declares (the seed's
# baseline, or e.g. the sparse baseline, rules/train.smk); the job times the method alone and then evaluates it
# (one process, so torch starts once per run).


rule unlearn:
    input:
        experiment=rules.prepare_experiment.output.experiment,
        request=rules.forget_request.output.request,
        start=starting_model,
        tuned=tuned_input,
    output:
        model=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/{{run}}/model.pt",
        run=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/{{run}}/run.json",
        outputs=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/{{run}}/outputs.npz",
    wildcard_constraints:
        run="|".join(map(re.escape, PLAN.runs)) if PLAN.runs else "^$",
    params:
        spec=run_job,
        identity=identity,
        seed=lambda wc: int(wc.seed),
        device=PLAN.device,
    threads: 1
    # Short jobs: grouped so that N of them share one sbatch call (group-components in slurm/config.yaml);
    # ignored by local runs.
    group:
        "unlearn"
    resources:
        **job_resources("unlearn"),
    log:
        f"{RESULTS}/logs/unlearn/{{dataset}}_{{scenario}}_seed{{seed}}_{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/unlearn/{{dataset}}_{{scenario}}_seed{{seed}}_{{run}}.tsv"
    conda:
        "../envs/unlearnbench.yaml"
    script:
        "../workflow_scripts/job.py"
