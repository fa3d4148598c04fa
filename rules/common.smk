# Input functions and parameters shared by the rule files (kept apart from rules, as the linter asks).

from types import SimpleNamespace

from unlearnbench.core.codehash import code_hash
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
SCENARIO = PLAN.scenarios
# scenarios whose request is built from a trained model (rule forget_request_from_model)
MODEL_REQUESTS = [name for name in SCENARIO if SCENARIO_TYPES[SCENARIO[name]["type"]].needs_reference]


def scenario_modules(wildcards):
    return "unlearnbench.scenarios", SCENARIO_TYPES[SCENARIO[wildcards.scenario]["type"]].__module__


def scenario_code(wildcards):
    return code_hash(*scenario_modules(wildcards))


def uib_scenarios():
    """The scenarios with rows in UIB Table 1 (artifacts.uib.scenarios; default every configured scenario)."""
    return PLAN.uib_scenarios


def dataset_cfg(wildcards):
    return PLAN.datasets[wildcards.dataset]


def references(scenario):
    """A scenario's reference runs: the oracles its type declares (Scenario.references: `retrain`, and e.g. the
    bias scenario's `retrain_replace`), then the un-unlearned baseline `original` if report_original."""
    return PLAN.reported(scenario)


def run_dirs():
    return [f"{RESULTS}/{dataset}/{scenario}/seed{seed}/{run}"
            for dataset, scenario in PLAN.experiments for seed in PLAN.seeds_of(scenario)
            for run in references(scenario) + [r for r in PLAN.runs_for(scenario) if int(seed) in PLAN.seeds_for(r)]]


def job_resources(kind):
    """Cluster resources of a job kind ("train", "unlearn", "tune"): Plan.resources (unlearnbench.config.plan)."""
    return PLAN.resources[kind]


def training_params(wildcards):
    return PLAN.training(wildcards.dataset)


def sparse_retrain_epochs(wildcards):
    """Retraining epochs of the sparse baseline: sparse_baseline.epochs, else the dataset's train.epochs."""
    return PLAN.sparse_epochs(wildcards.dataset)


# The sparse baseline rewinds to the dense baseline's epoch-k state (sparse_baseline.rewind): then, and only when a
# run starts from the sparse baseline, the baseline job also saves that state.
SPARSE_REWIND = PLAN.sparse_baseline["rewind"] and any(
    PLAN.job(run, dataset, scenario)["start"] == "sparse_baseline"
    for dataset, scenario in PLAN.experiments for run in PLAN.runs_for(scenario))


def sparse_rewind_epoch(wildcards):
    """The rewind epoch k of a dataset (pruning.rewind_epoch), None without rewinding."""
    if not SPARSE_REWIND:
        return None
    from unlearnbench.nn.pruning import rewind_epoch

    return rewind_epoch(int(PLAN.datasets[wildcards.dataset]["train"]["epochs"]),
                        PLAN.sparse_baseline["rewind_epoch"])


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
    return PLAN.bias_groups


def bias_strength_sweep():
    """True when some group of bias datasets spans at least two bias strengths (then fig_bias_strength is made)."""
    from unlearnbench.config.plan import is_bias_strength_sweep

    return is_bias_strength_sweep(bias_strength_groups())


# ---- Xu & Strohmer stage (rules/xs.smk)

def xs_settings(part):
    return lambda wildcards: XS[part]


def xs_tabular_settings(wildcards):
    """xs.tabular without the dataset list, plus this dataset's protected attribute."""
    settings = {k: v for k, v in XS["tabular"].items() if k != "datasets"}
    settings["protected"] = XS["tabular"]["datasets"][wildcards.tabular]["protected"]
    return settings


def xs_tabular_source(wildcards):
    return XS["tabular"]["datasets"][wildcards.tabular]["source"]


def xs_fold_outputs():
    return [f"{RESULTS}/xs/tabular/{name}/fold{fold}.csv"
            for name in XS["tabular"]["datasets"] for fold in range(XS["tabular"]["folds"])]


def xs_tabular_labels():
    return ({name: ds.get("label", name) for name, ds in XS["tabular"]["datasets"].items()}
            if XS and XS.get("tabular") else {})


def xs_image_source(part):
    """The prepared image source of xs.<part> (rule prepare_source), or nothing for CelebA (read from the mirror)."""

    def source_file(wildcards):
        source = XS[part]["source"]
        return [] if source == "celeba" else f"{RESULTS}/sources/{source}/data.npz"

    return source_file


# ---- tune stage (rules/tune.smk)

def tuning_request_code(wildcards):
    return code_hash(*scenario_modules(wildcards), "unlearnbench.datasets.experiment")


def tune_seeds(wildcards):
    return list(PLAN.runs[wildcards.run].tune.seeds)


def tune_starts(wildcards):
    """The starting model of the run (its setting's, from the run's config knobs) for every tuning seed."""
    return [starting_model(SimpleNamespace(dataset=wildcards.dataset, scenario=wildcards.scenario, run=wildcards.run,
                                           seed=str(seed))) for seed in tune_seeds(wildcards)]


def tune_oracles(wildcards):
    return [rules.tuning_oracle.output.model.format(dataset=wildcards.dataset, scenario=wildcards.scenario, seed=seed)
            for seed in tune_seeds(wildcards)]


# ---- JiT artifacts (rules/jit.smk)

def jit_outputs():
    """Every JiT artifact the config asks for (the inputs of rule jit_paper)."""
    if JIT is None:
        return []
    paper = f"{RESULTS}/paper"
    out = [f"{paper}/table_jit_{s}.tex" for s in JIT["scenarios"]]
    out += [f"{paper}/table_jit_breakdown_{d}_{t}.tex" for d, t, _ in JIT["breakdowns"]]
    if JIT["entropy"]:
        out += [f"{paper}/fig_jit_entropy_{s}.{ext}" for s in JIT["scenarios"] for ext in ("pdf", "png", "csv")]
    if JIT["runtime"]:
        out += [f"{paper}/fig_jit_runtime.pdf", f"{paper}/fig_jit_runtime.png"]
    if JIT["toy"]:
        out += [f"{paper}/fig_jit_toy.pdf", f"{paper}/fig_jit_toy.png"]
    return out


def jit_breakdown_group(wildcards):
    for dataset, kind, names in JIT["breakdowns"]:
        if dataset == wildcards.dataset and kind == wildcards.kind:
            return names
    raise ValueError(f"no JiT breakdown for dataset {wildcards.dataset!r} and scenario type {wildcards.kind!r}")


def jit_scenario_runs(wildcards):
    """run.json / outputs.npz of every run of one scenario (every dataset running it, every seed and run)."""
    dirs = [f"{RESULTS}/{d}/{s}/seed{seed}/{run}" for d, s in PLAN.experiments if s == wildcards.scenario
            for seed in PLAN.seeds_of(s)
            for run in references(s) + [r for r in PLAN.runs_for(s) if PLAN.runs[r].sweep_of is None]]
    return {"runs": [f"{d}/run.json" for d in dirs], "outputs": [f"{d}/outputs.npz" for d in dirs]}


# the population stage (rules/population.smk; PLAN.population)
POP = PLAN.population


def population_members(dataset, scenario, run):
    """The outputs of a run's N unlearned members."""
    n = POP["size"]
    if POP["protocol"] == "shadow":
        return [f"{RESULTS}/{dataset}/{scenario}/seed{k}/{run}/outputs.npz" for k in range(n)]
    return [f"{RESULTS}/{dataset}/{scenario}/population/{run}/member{k}/outputs.npz" for k in range(n)]


def population_runs(wildcards):
    return next(e["runs"] for e in POP["experiments"]
                if (e["dataset"], e["scenario"]) == (wildcards.dataset, wildcards.scenario))


def seed0(wildcards):
    """The member's wildcards as the seed-0 run's (its starting model, under the challenge protocol)."""
    return SimpleNamespace(dataset=wildcards.dataset, scenario=wildcards.scenario, run=wildcards.run, seed="0")


def population_outputs():
    if POP is None:
        return []
    out = []
    for e in POP["experiments"]:
        stem = f"{e['dataset']}_{e['scenario']}"
        out += [f"{RESULTS}/paper/table_forget_quality_{stem}.tex", f"{RESULTS}/paper/fig_ulira_roc_{stem}.png",
                f"{RESULTS}/paper/fig_forget_epsilon_{stem}.png", f"{RESULTS}/paper/fig_forget_quality_vs_n_{stem}.png"]
    return out
