# Baseline (one per seed, on the full biased training set) and retrain oracles (one per scenario and
# seed, from scratch on D \ ΔD). The oracle is also evaluated here, as method "retrain".


def training_params(wildcards):
    ds = config["datasets"][wildcards.dataset]
    return {"model": ds["model"], "train": ds["train"]}


rule baseline:
    input:
        data=rules.prepare_experiment.output[0],
    output:
        model=f"{RESULTS}/{{dataset}}/baseline/seed{{seed}}/model.pt",
    params:
        training=training_params,
        device=config["device"],
    threads: 1
    resources:
        **config["resources"].get("train", {}),
    log:
        f"{RESULTS}/logs/baseline/{{dataset}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baseline/{{dataset}}_seed{{seed}}.tsv"
    script:
        "../workflow_scripts/train.py"


rule retrain_oracle:
    input:
        data=rules.prepare_experiment.output[0],
        request=rules.forget_request.output[0],
    output:
        model=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/retrain/model.pt",
        run=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/retrain/run.json",
        outputs=f"{RESULTS}/{{dataset}}/{{scenario}}/seed{{seed}}/retrain/outputs.npz",
    params:
        training=training_params,
        device=config["device"],
    threads: 1
    resources:
        **config["resources"].get("train", {}),
    log:
        f"{RESULTS}/logs/retrain/{{dataset}}_{{scenario}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/retrain/{{dataset}}_{{scenario}}_seed{{seed}}.tsv"
    script:
        "../workflow_scripts/train.py"
