# Input functions and parameters shared by the rule files (kept apart from rules, as the linter asks).

from unlearnbench.config import setting_knobs, setting_source_hash


def dataset_cfg(wildcards):
    return config["datasets"][wildcards.dataset]


def run_dirs():
    return [f"{RESULTS}/{dataset}/{scenario}/seed{seed}/{run}"
            for dataset, scenario in EXPERIMENTS for seed in SEEDS for run in REFERENCES + RUNS]


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


def sparse_retrain_epochs(wildcards):
    """Retraining epochs of the sparse baseline: sparse_baseline.epochs, else the dataset's train.epochs."""
    epochs = (config.get("sparse_baseline") or {}).get("epochs")
    return int(config["datasets"][wildcards.dataset]["train"]["epochs"] if epochs is None else epochs)


def sparsity_tag(sparsity: float) -> str:
    """The sparse baseline's path component for a sparsity level (0.95 -> "0.95")."""
    return format(float(sparsity), "g")


def starting_model(wildcards):
    """The dense baseline, or for a `setting: sparsity` run the sparse baseline at the run's sparsity."""
    spec = config["methods"][wildcards.run]
    if spec.get("setting", "standard") != "sparsity":
        return rules.baseline.output.model.format(dataset=wildcards.dataset, seed=wildcards.seed)
    sparsity = setting_knobs(config, wildcards.run)["sparsity"]
    return rules.sparse_baseline.output.model.format(dataset=wildcards.dataset, seed=wildcards.seed,
                                                     sparsity=sparsity_tag(sparsity))


def run_params(wildcards):
    spec = config["methods"][wildcards.run]
    return {
        "method": spec["method"],
        "setting": spec.get("setting", "standard"),
        "knobs": method_knobs(config, wildcards.run),
        "setting_knobs": setting_knobs(config, wildcards.run),
        "source_sha256": method_source_hash(spec["method"]),
        "setting_sha256": setting_source_hash(),
    }
