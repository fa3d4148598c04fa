# Baseline (one per seed, on the full biased training set) and retrain oracles (one per scenario and
# seed, from scratch on D \ ΔD). The oracle is also evaluated here, as method "retrain".


def job_resources(kind):
    """Cluster resources of a training ("train") or unlearning ("unlearn") job: config["resources"][kind]
    with the schema's defaults (one GPU, cpus_per_gpu, mem_mb, runtime in minutes). The SLURM executor turns
    them into --gpus, --cpus-per-gpu, --mem and --time; a local run ignores gpu, cpus_per_gpu and runtime.
    gpu: 0 makes a CPU job (then --cpus-per-task comes from threads)."""
    res = dict(config["resources"].get(kind) or {})
    res.setdefault("gpu", 1)
    res.setdefault("cpus_per_gpu", 4)
    res.setdefault("mem_mb", 16000)
    res.setdefault("runtime", {"train": 240, "unlearn": 60}[kind])
    if not res["gpu"]:
        res.pop("cpus_per_gpu")
    return res


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
        **job_resources("train"),
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
        **job_resources("train"),
    log:
        f"{RESULTS}/logs/retrain/{{dataset}}_{{scenario}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/retrain/{{dataset}}_{{scenario}}_seed{{seed}}.tsv"
    script:
        "../workflow_scripts/train.py"
