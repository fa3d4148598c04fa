# Input functions and parameters shared by the rule files (kept apart from rules, as the linter asks).

from unlearnbench.core.codehash import code_hash
from unlearnbench.config.plan import scenario_options
from unlearnbench.scenarios import REGISTRY as SCENARIO_TYPES

# the code each kind of job runs (unlearnbench.core.codehash): a change to it (or to what it imports) reruns its jobs
CODE = {
    "datasets": code_hash("unlearnbench.datasets", "unlearnbench.datasets.rule"),
    "experiment": code_hash("unlearnbench.datasets.experiment"),
    "training": code_hash("unlearnbench.steps.training"),
    "evaluation": code_hash("unlearnbench.steps.unlearning"),
    "report": code_hash("unlearnbench.artifacts.report"),
    "figures": code_hash("unlearnbench.artifacts.uib.plots"),
    "tables": code_hash("unlearnbench.artifacts.uib.tables"),
}
SCENARIO = {name: scenario_options(config, name) for name in config["scenarios"]}
# scenarios whose request is built from a trained model (rule forget_request_from_model)
MODEL_REQUESTS = [name for name in SCENARIO if SCENARIO_TYPES[SCENARIO[name]["type"]].needs_reference]


def scenario_modules(wildcards):
    return "unlearnbench.scenarios", f"unlearnbench.scenarios.{SCENARIO[wildcards.scenario]['type']}"


def scenario_code(wildcards):
    return code_hash(*scenario_modules(wildcards))


def uib_scenarios():
    """The scenarios with rows in UIB Table 1 (artifacts.uib.scenarios; default every configured scenario)."""
    return ((config.get("artifacts") or {}).get("uib") or {}).get("scenarios") or list(config["scenarios"])


def dataset_cfg(wildcards):
    return config["datasets"][wildcards.dataset]


def references(scenario):
    """A scenario's reference runs: the oracles its type declares (Scenario.references: `retrain`, and e.g. the
    bias scenario's `retrain_replace`), then the un-unlearned baseline `original` if report_original."""
    return PLAN.oracles(scenario) + (["original"] if config["report_original"] else [])


def run_dirs():
    return [f"{RESULTS}/{dataset}/{scenario}/seed{seed}/{run}"
            for dataset, scenario in PLAN.experiments for seed in PLAN.seeds_of(scenario)
            for run in references(scenario) + [r for r in PLAN.runs_for(scenario) if int(seed) in PLAN.seeds_for(r)]]


def job_resources(kind):
    """Cluster resources of a training ("train") or unlearning ("unlearn") job: config["resources"][kind]
    with the schema's defaults (one GPU, cpus_per_gpu, mem_mb, runtime in minutes). The SLURM executor turns
    them into --gpus, --cpus-per-gpu, --mem and --time; a local run ignores gpu, cpus_per_gpu and runtime.
    gpu: 0 makes a CPU job (then --cpus-per-task comes from threads)."""
    res = dict(config["resources"].get(kind) or {})
    res.setdefault("gpu", 1)
    res.setdefault("cpus_per_gpu", 4)
    res.setdefault("mem_mb", 16000)
    res.setdefault("runtime", {"train": 240, "unlearn": 60, "tune": 240}[kind])
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


# The sparse baseline rewinds to the dense baseline's epoch-k state (sparse_baseline.rewind): then, and only when a
# run starts from the sparse baseline, the baseline job also saves that state.
SPARSE_REWIND = bool((config.get("sparse_baseline") or {}).get("rewind", True)) and any(
    PLAN.job(run, dataset, scenario)["start"] == "sparse_baseline"
    for dataset, scenario in PLAN.experiments for run in PLAN.runs_for(scenario))


def sparse_rewind_epoch(wildcards):
    """The rewind epoch k of a dataset (pruning.rewind_epoch), None without rewinding."""
    if not SPARSE_REWIND:
        return None
    from unlearnbench.nn.pruning import rewind_epoch

    return rewind_epoch(int(config["datasets"][wildcards.dataset]["train"]["epochs"]),
                        (config.get("sparse_baseline") or {}).get("rewind_epoch"))


def run_job(wildcards):
    """What an unlearning job runs (config.RunSpec.job): method, setting, knobs, starting model, code hash. A tuned
    run's job is pending (config.RunSpec.pending_job): it reads the knobs its tune stage chose from its input
    `tuned` when it runs (rules/tune.smk)."""
    return PLAN.unlearn_job(wildcards.run, wildcards.dataset, wildcards.scenario)


def tuned_input(wildcards):
    """A tuned run's chosen.json, written by `tune` for its scenario (or for the scenario it is `tuned_by`) as an
    ordinary input, so a search that reruns reruns the evaluations that read it. `tune` is not a checkpoint: with a
    checkpoint in the DAG, Snakemake's job groups (the SLURM profile batches unlearning jobs) lose and duplicate
    members (docs/slurm.md)."""
    if PLAN.runs[wildcards.run].tune is None:
        return []
    return rules.tune.output.chosen.format(dataset=wildcards.dataset, run=wildcards.run,
                                           scenario=PLAN.tune_scenario(wildcards.scenario))


def identity(wildcards):
    """Who a run is, written into its run.json (aggregation reads it, not the path)."""
    return {"dataset": wildcards.dataset, "scenario": wildcards.scenario, "seed": int(wildcards.seed)}


def starting_model(wildcards):
    """The model a run starts from, as its setting's wrapper declares it (`start`, `start_params`; from the run's
    config knobs: knobs that choose the starting model are never tuned)."""
    job = PLAN.job(wildcards.run, wildcards.dataset, wildcards.scenario)
    start = {"baseline": rules.baseline.output.model, "sparse_baseline": rules.sparse_baseline.output.model}
    if job["start"] not in start:
        raise ValueError(f"methods.{wildcards.run}: starting model {job['start']!r} has no rule")
    params = {k: format(float(v), "g") for k, v in job["start_params"].items()}
    return start[job["start"]].format(dataset=wildcards.dataset, seed=wildcards.seed, **params)


def scenario_label(name):
    """A scenario's heading in tables: its type's label (unlearnbench.scenarios), plus the name if they differ."""
    from unlearnbench.scenarios import REGISTRY

    label = REGISTRY[SCENARIO[name]["type"]].label
    return label if name == SCENARIO[name]["type"] else f"{label} ({name})"


def bias_strength_groups():
    """fig_bias_strength's datasets: dataset -> {scenario, bias_strength, group} (unlearnbench.config.plan)."""
    from unlearnbench.config.plan import bias_strength_groups as groups

    return groups(config, PLAN)


def bias_strength_sweep():
    """True when some group of bias datasets spans at least two bias strengths (then fig_bias_strength is made)."""
    from unlearnbench.config.plan import is_bias_strength_sweep

    return is_bias_strength_sweep(bias_strength_groups())
