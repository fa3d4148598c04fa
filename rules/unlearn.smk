# One job per (dataset, scenario, run, seed): the method starts from the seed's baseline; the job times
# the method alone and then evaluates it (one process, so torch starts once per run).


def run_params(wildcards):
    spec = config["methods"][wildcards.run]
    return {
        "method": spec["method"],
        "setting": spec.get("setting", "standard"),
        "knobs": method_knobs(config, wildcards.run),
        "source_sha256": method_source_hash(spec["method"]),
    }


rule unlearn:
    input:
        data=rules.prepare_experiment.output[0],
        request=rules.forget_request.output[0],
        baseline=rules.baseline.output.model,
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
    resources:
        **config["resources"].get("unlearn", {}),
    log:
        f"{RESULTS}/logs/unlearn/{{dataset}}_{{scenario}}_seed{{seed}}_{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/unlearn/{{dataset}}_{{scenario}}_seed{{seed}}_{{run}}.tsv"
    script:
        "../workflow_scripts/unlearn.py"
