# One job per (dataset, scenario, run, seed): the method starts from the seed's baseline (a sparsity run: from
# the seed's sparse baseline at its sparsity, rules/train.smk); the job times the method alone and then
# evaluates it (one process, so torch starts once per run).


rule unlearn:
    input:
        data=rules.prepare_experiment.output[0],
        request=rules.forget_request.output[0],
        baseline=starting_model,
    output:
        model=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/{{run}}/model.pt",
        run=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/{{run}}/run.json",
        outputs=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/{{run}}/outputs.npz",
    wildcard_constraints:
        run="|".join(RUNS) if RUNS else "^$",
    params:
        spec=run_params,
        device=config["device"],
        fail=lambda wc: config["fault_injection"] == f"{wc.dataset}/{wc.scenario}/{wc.seed}/{wc.run}",
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
        "../workflow_scripts/unlearn.py"
