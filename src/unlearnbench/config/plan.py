"""The run configuration, parsed once: validation beyond the JSON schema, and the specs every rule reads.

The schema (config/schema.yaml) checks structure and ranges and fills defaults; `parse(config)` checks what a schema
cannot (every method, wrapper and scenario exists in its registry, every knob is known, typed, finite and in range,
scenario options fit their datasets, per-scenario overrides are valid where they apply) and returns a `Plan`: the
experiments, seeds and one `RunSpec` per run. Every error is a ConfigError naming the config key and the fix.
Torch-free: the Snakefile process imports this module (registries load their modules, which import torch lazily).
"""
from __future__ import annotations

import copy
import dataclasses
import functools

from dataclasses import dataclass, field

from . import sweeps
from .population import population_plan
from ..core.codehash import code_hash
from ..core.errors import ConfigError, InputFileError, SizeError
from ..core.knobs import as_dict, knob_fields

REFERENCE_RUNS = ("retrain", "original")
# a run's keys that are not method knobs
RUN_KEYS = ("method", "setting", "setting_knobs", "scenarios", "by_scenario", "by_dataset", "sweep", "sweep_list",
            "sweep_seeds", "tune")
# a scenario entry's keys that are not options of its type (scenarios/base.py: make_options leaves them out)
SCENARIO_TUNING_KEYS = ("tune_request", "tuned_by", "seeds")


@dataclass(frozen=True)
class RunSpec:
    """One configured run (`methods.<name>`): a method, optionally in a setting (a wrapper), with validated knobs and
    per-dataset / per-scenario overrides. `job(dataset, scenario)` is what a job of this run receives."""

    name: str
    method: str
    setting: str
    knobs: dict
    setting_knobs: dict
    scenarios: tuple[str, ...] | None = None  # None: every scenario of every dataset
    by_dataset: dict = field(default_factory=dict)
    by_scenario: dict = field(default_factory=dict)
    sweep_of: str | None = None  # a sweep point: the run whose `sweep` declared it
    point: dict = field(default_factory=dict)  # a sweep point's flat knob values (unlearnbench.config.sweeps)
    tune: sweeps.TuneSpec | None = None  # knobs selected on validation data by the tune stage (rules/tune.smk)
    points: tuple[str, ...] = ()  # the names of this run's sweep points
    seeds: tuple[int, ...] | None = None  # the seeds this run runs on (sweep points: sweep_seeds); None: all

    def applies_to(self, scenario: str) -> bool:
        return self.scenarios is None or scenario in self.scenarios

    def resolved(self, dataset: str, scenario: str) -> tuple[dict, dict]:
        """(knobs, setting knobs) as given in config for one experiment: base < by_dataset < by_scenario."""
        knobs, s_knobs = {}, {}
        for layer in (self.by_dataset.get(dataset) or {}, self.by_scenario.get(scenario) or {}):
            knobs.update({k: v for k, v in layer.items() if k != "setting_knobs"})
            s_knobs.update(layer.get("setting_knobs") or {})
        return knobs, s_knobs

    def job(self, dataset: str, scenario: str, tuned: dict | None = None) -> dict:
        """Plain dict handed to the unlearning job: who it is, what it runs (knobs with defaults filled), the model it
        starts from and the hash of its code (a change reruns exactly this run's jobs). Knobs: the run's config <
        by_dataset < by_scenario < the sweep point's values < the tuned values (`tuned`: tuning.summary of the tune
        stage's chosen.json)."""
        return build_job(self.layers(dataset, scenario), tuned)

    def layers(self, dataset: str, scenario: str) -> dict:
        """What a job is built from before any tuning (plain values): the run's identity and its configured knob
        layers merged (config < by_dataset < by_scenario < sweep point)."""
        knob_over, setting_over = self.resolved(dataset, scenario)
        point_knobs, point_setting = sweeps.split(self.point)
        return {"run": self.name, "method": self.method, "setting": self.setting,
                "knobs": {**self.knobs, **knob_over, **point_knobs},
                "setting_knobs": {**self.setting_knobs, **setting_over, **point_setting},
                "overridden": sorted({*knob_over, *(f"setting_knobs.{k}" for k in setting_over)}),
                "sweep_of": self.sweep_of, "point": dict(self.point)}

    def pending_job(self, dataset: str, scenario: str) -> dict:
        """The job of a tuned run before its tune stage has chosen: the untuned job plus `pending_tune` (the
        configured layers and the tuned keys), which the job resolves against the tune stage's chosen.json when it
        runs (`resolve_tuned`). The tune stage is an ordinary rule, not a checkpoint (docs/slurm.md: Snakemake's
        job groups break on checkpoints), so the chosen knobs cannot be in the plan."""
        layers = self.layers(dataset, scenario)
        return {**build_job(layers, None), "knobs_from": "tuned",
                "pending_tune": {"layers": layers, "keys": list(self.tune.keys)}}


def build_job(layers: dict, tuned: dict | None = None) -> dict:
    """RunSpec.job from its layers (RunSpec.layers) and the tune stage's result, validated (knob types, ranges)."""
    from ..methods import REGISTRY, WRAPPERS, make_knobs, make_setting_knobs

    name, method, setting = layers["run"], layers["method"], layers["setting"]
    tuned_knobs, tuned_setting = sweeps.split(tuned["point"]) if tuned else ({}, {})
    where = f"methods.{name}"
    knobs = as_dict(make_knobs(method, {**layers["knobs"], **tuned_knobs}, where))
    modules = [REGISTRY[method].__module__]
    start, start_params, s_knobs = "baseline", {}, {}
    if setting in WRAPPERS:
        wrapper = WRAPPERS[setting]
        s_obj = make_setting_knobs(setting, {**layers["setting_knobs"], **tuned_setting}, where, method)
        s_knobs = as_dict(s_obj)
        start, start_params = wrapper.start, wrapper.start_params(s_obj)
        modules.append(wrapper.__module__)
    sweep_of = layers["sweep_of"]
    return {"run": name, "method": method, "setting": setting, "knobs": knobs, "setting_knobs": s_knobs,
            "overridden": list(layers["overridden"]), "start": start, "start_params": start_params,
            "code": code_hash(*modules), "sweep_of": sweep_of, "point": dict(layers["point"]),
            "knobs_from": "tuned" if tuned else ("sweep" if sweep_of else "config"), "tuned": tuned}


def resolve_tuned(job: dict, chosen_path: str) -> dict:
    """A pending tuned job (RunSpec.pending_job) with the knobs the tune stage chose (the chosen.json at
    `chosen_path`), validated like config knobs; an error names the file. Called by the unlearning job when it runs.
    A job that is not pending is returned as it is."""
    from ..core.io import read_json

    pending = job.get("pending_tune")
    if not pending:
        return job
    chosen = read_json(chosen_path, "tuning result")
    point = chosen.get("point")
    keys = list(pending["keys"])
    if not isinstance(point, dict) or set(point) - set(keys):
        raise InputFileError(f"{chosen_path}: holds no chosen point over {keys} (found {point!r}); "
                             f"delete it so the tune stage runs again")
    summary = {"point": point, "file": str(chosen_path), "scenario": chosen.get("scenario"),
               **{k: chosen.get(k) for k in TUNED_SUMMARY}}
    try:
        resolved = build_job(pending["layers"], summary)
    except ConfigError as exc:
        raise InputFileError(f"{chosen_path}: the chosen knobs are not valid for run {job['run']!r} ({exc}); delete "
                             f"the file so the tune stage runs again") from exc
    if (resolved["start"], resolved["start_params"]) != (job["start"], job["start_params"]):
        raise InputFileError(f"{chosen_path}: the chosen knobs change run {job['run']!r}'s starting model, which "
                             f"tuning may not do; delete the file so the tune stage runs again")
    return resolved


@dataclass(frozen=True)
class Plan:
    """Everything the rules need from a validated config."""

    experiments: list[tuple[str, str]]  # (dataset, scenario) pairs
    seeds: list[int]
    runs: dict[str, RunSpec]
    # scenario -> its reference oracles' run names (`retrain` first), as its type declares them (Scenario.references)
    references: dict[str, list[str]] = field(default_factory=dict)
    tuning: dict = field(default_factory=dict)  # scenario -> {"request": option overrides, "tuned_by": name | None}
    scenario_seeds: dict = field(default_factory=dict)  # scenario -> its seeds (`scenarios.<name>.seeds`), if fewer
    # scenario -> (seeds asked by `scenarios.<name>.seeds`, seeds the run has) where the run has fewer (e.g.
    # `--config seeds=2` on the default, whose JiT scenarios ask for 3): the tables' notes state the cap
    seed_caps: dict = field(default_factory=dict)
    jit: dict | None = None  # the JiT artifacts `artifacts.jit` asks for (config.jit.jit_plan); None: none
    # The run's settings, validated, with the schema's defaults filled: the rules read these, never the config
    # dict (tests/test_rules.py checks). `settings` holds results, device, data_seed, job_server, report_original,
    # data (mirror, download_dir) and sparse_baseline; `datasets` every dataset entry; `scenarios` every scenario's
    # options with its `type`; `xs` the Xu & Strohmer block (None without one).
    settings: dict = field(default_factory=dict)
    datasets: dict = field(default_factory=dict)
    scenarios: dict = field(default_factory=dict)
    uib_scenarios: list = field(default_factory=list)  # artifacts.uib.scenarios, default every configured scenario
    resources: dict = field(default_factory=dict)  # "train" / "unlearn" / "tune" -> the jobs' cluster resources
    xs: dict | None = None
    bias_groups: dict = field(default_factory=dict)  # fig_bias_strength's datasets (bias_strength_groups)
    # the population stage (config.population.population_plan): size, protocol, ..., experiments; None: none
    population: dict | None = None
    race: dict = field(default_factory=lambda: {"mode": "as_published"})  # `tuning:` (as_published | equal_budget)
    _jobs: dict = field(default_factory=dict, repr=False, compare=False)

    def __getattr__(self, name):
        # results, device, data_seed, ...: the run's settings as attributes (PLAN.results, PLAN.device)
        settings = self.__dict__.get("settings") or {}
        if name in settings:
            return settings[name]
        raise AttributeError(name)

    @property
    def labels(self) -> dict[str, str]:
        """Each dataset's display label (`datasets.<name>.label`, default its name)."""
        return {name: ds.get("label", name) for name, ds in self.datasets.items()}

    def reported(self, scenario: str) -> list[str]:
        """A scenario's reference runs: its oracles (`retrain` first), then `original` if report_original."""
        return self.oracles(scenario) + (["original"] if self.report_original else [])

    def training(self, dataset: str) -> dict:
        """A dataset's model and training recipe (what its training jobs get)."""
        ds = self.datasets[dataset]
        return {"model": ds["model"], "train": ds["train"]}

    def sparse_epochs(self, dataset: str) -> int:
        """Retraining epochs of the sparse baseline: sparse_baseline.epochs, else the dataset's train.epochs."""
        epochs = self.sparse_baseline["epochs"]
        return int(self.datasets[dataset]["train"]["epochs"] if epochs is None else epochs)

    def oracles(self, scenario: str) -> list[str]:
        """The reference oracles trained for a scenario (`retrain` first)."""
        return self.references.get(scenario, ["retrain"])

    @property
    def all_oracles(self) -> list[str]:
        """Every reference oracle name of the configured scenarios (for the oracle rule's wildcard)."""
        return list(dict.fromkeys(["retrain", *(n for names in self.references.values() for n in names)]))

    def runs_for(self, scenario: str) -> list[str]:
        return [name for name, spec in self.runs.items() if spec.applies_to(scenario)]

    def seeds_for(self, run: str, scenario: str | None = None) -> list[int]:
        """The seeds a run is evaluated on: every configured seed, or a sweep's `sweep_seeds`; on `scenario`, only
        those of its seeds too (`scenarios.<name>.seeds`)."""
        seeds = self.runs[run].seeds
        seeds = list(self.seeds) if seeds is None else list(seeds)
        if scenario is not None:
            seeds = [s for s in seeds if s in self.seeds_of(scenario)]
        return seeds

    def seed_notes(self, scenarios) -> list[str]:
        """Table notes on the run as a whole for a table of `scenarios`: the seed counts capped at the run's
        (`seed_caps`), then how the methods got their knobs (`tuning_note`)."""
        return [f"{name}: {got} seeds (scenarios.{name}.seeds asks for {asked}; this run has {got})"
                for name in scenarios if name in self.seed_caps for asked, got in [self.seed_caps[name]]] + \
            [self.tuning_note(scenarios)]

    def tuning_note(self, scenarios) -> str:
        """Which tuning mode made a table of `scenarios`, and each tuned run's budget (docs/tuning.md)."""
        tuned = {}
        for scenario in scenarios:
            for run in self.tuned_runs_for(scenario):
                tuned[run] = self.runs[run].tune.trials
        if self.race["mode"] == "equal_budget":
            return (f"Tuning: equal budget: every method's knobs chosen by TPE in {self.race.get('trials', 12)} "
                    f"trials over its declared search space, on the tuning request and validation data "
                    f"(docs/tuning.md).")
        if not tuned:
            return "Tuning: as published: no method tuned; every method at its configured values."
        runs = ", ".join(f"{run} ({n} trials)" for run, n in tuned.items())
        return (f"Tuning: as published: {runs} tuned on the tuning request and validation data; every other method "
                f"at its configured (authors') values.")

    def seeds_of(self, scenario: str) -> list[int]:
        """The seeds a scenario runs on (its oracles, original and runs): `scenarios.<name>.seeds`, default all."""
        return list(self.scenario_seeds.get(scenario, self.seeds))

    def tuned_runs_for(self, scenario: str) -> list[str]:
        return [name for name in self.runs_for(scenario) if self.runs[name].tune is not None]

    def tune_scenario(self, scenario: str) -> str:
        """The scenario whose tune stage chooses the knobs of the runs on `scenario` (itself, or its `tuned_by`)."""
        return (self.tuning.get(scenario) or {}).get("tuned_by") or scenario

    def tune_jobs(self) -> list[tuple[str, str, str]]:
        """Every (dataset, scenario, run) the tune stage searches (scenarios with `tuned_by` reuse another's)."""
        out = []
        for dataset, scenario in self.experiments:
            for run in self.tuned_runs_for(scenario):
                key = (dataset, self.tune_scenario(scenario), run)
                if key not in out:
                    out.append(key)
        return out

    def job(self, run: str, dataset: str, scenario: str) -> dict:
        """RunSpec.job, computed once per (run, dataset, scenario)."""
        key = (run, dataset, scenario)
        if key not in self._jobs:
            self._jobs[key] = self.runs[run].job(dataset, scenario)
        return self._jobs[key]

    def tuned_job(self, run: str, dataset: str, scenario: str, chosen_path: str) -> dict:
        """The job of a tuned run with the knobs its tune stage chose (the chosen.json at `chosen_path`)."""
        return resolve_tuned(self.runs[run].pending_job(dataset, scenario), chosen_path)

    def unlearn_job(self, run: str, dataset: str, scenario: str) -> dict:
        """What rule unlearn hands its job: the run's job, or for a tuned run the pending job (resolved at run time
        against chosen.json, its input `tuned`)."""
        if self.runs[run].tune is None:
            return self.job(run, dataset, scenario)
        return self.runs[run].pending_job(dataset, scenario)


# what an evaluated job records of the tune stage's result (besides the chosen point), in its run.json
TUNED_SUMMARY = ("search", "objective", "terms", "value", "n_trials", "n_complete", "n_failed", "n_acting",
                 "chosen_acts", "seeds", "request")


def _knob_type(method: str, setting: str):
    """flat key -> the knob's Python type (KeyError: not a knob of this method or setting)."""
    from ..methods import REGISTRY, WRAPPERS

    fields = {k: type(f.default) for k, f in knob_fields(REGISTRY[method].Knobs).items()}
    if setting in WRAPPERS:
        fields.update({sweeps.SETTING_PREFIX + k: type(f.default)
                       for k, f in knob_fields(WRAPPERS[setting].Knobs).items()})
    return lambda key: fields[key]


def _point_validator(method: str, setting: str):
    """validate(flat point, where): each value checked like a config knob; messages name `<where>.<knob>` (setting
    knobs: `<where>.setting_knobs.<knob>`)."""
    from ..methods import make_knobs, make_setting_knobs

    def validate(point: dict, where: str) -> None:
        knobs, s_knobs = sweeps.split(point)
        make_knobs(method, knobs, where)
        if s_knobs:
            make_setting_knobs(setting, s_knobs, where, method)
    return validate


def _run_spec(name: str, spec: dict, seeds: list[int]) -> list[RunSpec]:
    """The run and its sweep points (each its own RunSpec, named by sweeps.point_name)."""
    from ..methods import REGISTRY, STANDARD, WRAPPERS, make_knobs, make_setting_knobs

    where = f"methods.{name}"
    knobs = {k: v for k, v in spec.items() if k not in RUN_KEYS}
    make_knobs(spec["method"], knobs, where)
    setting = spec.get("setting", STANDARD)
    s_obj = make_setting_knobs(setting, spec.get("setting_knobs"), where, spec["method"])
    scenarios = spec.get("scenarios")
    validate = _point_validator(spec["method"], setting)
    declared = sweeps.parse_sweep(where, spec)
    for point_where, point in declared:
        validate(point, point_where)
    tune = None
    if spec.get("tune") is not None:
        fixed = set()
        if setting in WRAPPERS:
            fixed = {sweeps.SETTING_PREFIX + k for k in WRAPPERS[setting].start_params(s_obj)}
        tune = sweeps.parse_tune(f"{where}.tune", spec["tune"], [p for _, p in declared],
                                 knob_type=_knob_type(spec["method"], setting), validate=validate, fixed_keys=fixed,
                                 seeds=seeds)
    method_knobs = set(knob_fields(REGISTRY[spec["method"]].Knobs))
    names = [sweeps.point_name(name, p, method_knobs, w) for w, p in declared]
    sweep_seeds = spec.get("sweep_seeds")
    if sweep_seeds is not None:
        if not declared:
            raise ConfigError(f"{where}.sweep_seeds: the run declares no sweep (sweep or sweep_list)")
        sweep_seeds = tuple(seed_subset(sweep_seeds, seeds, f"{where}.sweep_seeds"))
    common = dict(method=spec["method"], setting=setting, knobs=knobs,
                  setting_knobs=dict(spec.get("setting_knobs") or {}),
                  scenarios=None if scenarios is None else tuple(scenarios),
                  by_dataset=dict(spec.get("by_dataset") or {}), by_scenario=dict(spec.get("by_scenario") or {}))
    base = RunSpec(name=name, tune=tune, points=tuple(names), **common)
    return [base] + [RunSpec(name=n, sweep_of=name, point=p, seeds=sweep_seeds, **common)
                     for n, (_, p) in zip(names, declared)]


def equal_budget_spec(name: str, spec: dict, race: dict) -> dict:
    """`tuning: equal_budget`: the run `name` tuned by TPE over its method's declared search space (and its setting's),
    with the race's trial budget; the run's own `tune:` block, if any, is replaced so every method gets the same."""
    from ..methods import REGISTRY, STANDARD, WRAPPERS

    method, setting = spec["method"], spec.get("setting", STANDARD)
    if method not in REGISTRY or setting not in (STANDARD, *WRAPPERS):
        return spec  # an unknown method or setting: _run_spec names the key and the choices
    space = copy.deepcopy(REGISTRY[method].search_space)
    if space is None:
        raise ConfigError(f"methods.{name}.method: {method!r} declares no search space (`search_space` on its "
                          f"class), so it cannot run with tuning.mode: equal_budget; declare one (docs/tuning.md) or "
                          f"use tuning.mode: as_published")
    if setting != STANDARD:
        own = WRAPPERS[setting].search_space
        if own is None:
            raise ConfigError(f"methods.{name}.setting: {setting!r} declares no search space, so it cannot run with "
                              f"tuning.mode: equal_budget")
        space.update(copy.deepcopy(own))
    if not space:
        raise ConfigError(f"methods.{name}: {method!r} in setting {setting!r} has an empty search space; an "
                          f"equal-budget table needs every method tuned")
    tune = {"search": "tpe", "space": space, "trials": race.get("trials", 12), "seed": race.get("seed", 0)}
    for key in ("startup_trials", "seeds", "objective"):
        if race.get(key) is not None:
            tune[key] = copy.deepcopy(race[key])
    return {**spec, "tune": tune}


def seed_subset(value, seeds: list[int], key: str) -> list[int]:
    """`sweep_seeds` / `scenarios.<name>.seeds`: N >= 1 (the first N configured seeds) or a list of distinct
    configured seeds; ConfigError naming `key` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value:
        return list(seeds[:value])
    if isinstance(value, list) and value and set(value) <= set(seeds) and len(set(value)) == len(value):
        return list(value)
    raise ConfigError(f"{key}: expected N >= 1 (the first N seeds) or a list of distinct configured seeds "
                      f"({seeds}), got {value!r}")


def _scenario_tuning(config: dict, scenario_types: dict) -> dict:
    """Each scenario's tuning request options (`tune_request`, validated like its options) and `tuned_by`."""
    from ..scenarios import make_options

    tuning = {}
    for name, entry in config["scenarios"].items():
        entry = entry or {}
        where = f"scenarios.{name}"
        request, tuned_by = entry.get("tune_request"), entry.get("tuned_by")
        if request is not None and tuned_by is not None:
            raise ConfigError(f"{where}.tune_request: this scenario reuses the knobs tuned on {tuned_by!r} "
                              f"(tuned_by), so it has no tuning request of its own; remove one of the two")
        if request is not None:
            if not isinstance(request, dict):
                raise ConfigError(f"{where}.tune_request: expected a mapping of the scenario's options, got "
                                  f"{request!r}")
            cls, options = make_options(name, entry, where)
            tuned = tuning_options(name, entry)
            cls().check_tuning(options, tuned, set(request), f"{where}.tune_request")
        if tuned_by is not None:
            if tuned_by not in config["scenarios"] or tuned_by == name:
                raise ConfigError(f"{where}.tuned_by: {tuned_by!r} is not another configured scenario "
                                  f"({', '.join(s for s in config['scenarios'] if s != name)})")
            from ..scenarios import REGISTRY as SCENARIOS

            allowed = {scenario_types[name], SCENARIOS[scenario_types[name]].tunes_like} - {None}
            if scenario_types[tuned_by] not in allowed:
                raise ConfigError(f"{where}.tuned_by: {tuned_by!r} is a {scenario_types[tuned_by]!r} scenario and "
                                  f"{name!r} a {scenario_types[name]!r} one; knobs are reused within one type"
                                  f" ({' or '.join(sorted(allowed))} here)")
            if (config["scenarios"][tuned_by] or {}).get("tuned_by"):
                raise ConfigError(f"{where}.tuned_by: {tuned_by!r} itself reuses another scenario's knobs; name "
                                  f"the scenario that is tuned")
        tuning[name] = {"request": dict(request or {}), "tuned_by": tuned_by}
    return tuning


def _has_tuning_request(scenario_type: str) -> bool:
    """Whether a scenario type builds a tuning request of its own (overrides `Scenario.build_tuning`)."""
    from ..scenarios import REGISTRY as SCENARIOS
    from ..scenarios.base import Scenario

    return SCENARIOS[scenario_type].build_tuning is not Scenario.build_tuning


# folders of the repository that hold its source, config, docs and tests: never an output folder
SOURCE_FOLDERS = ("src", "config", "rules", "workflow_scripts", "tests", "docs", "envs", "report", "slurm",
                  "profiles", "benchmarks", ".git", ".snakemake")


def check_results(results, root=None) -> None:
    """`results` is a folder a run may write into: not empty, /, the repository root (`root`, the Snakefile's folder)
    or inside one of its source folders, and free of braces (Snakemake would read them as wildcards)."""
    import os
    from pathlib import Path

    text = str(results).strip()
    if text in ("", "/", ".") or text.rstrip("/") == "":
        raise ConfigError(f"results: {results!r} is not a usable output folder (it would write into "
                          f"the repository root or /); give a folder name such as results")
    if "{" in text or "}" in text:
        raise ConfigError(f"results: {results!r} holds a brace, which Snakemake reads as a wildcard in every output "
                          f"path; give a folder name without {{ or }}, such as results")
    if root is None:
        return
    root = Path(root).resolve()
    target = Path(os.path.expanduser(text))
    target = (target if target.is_absolute() else Path.cwd() / target).resolve()
    if target == root:
        raise ConfigError(f"results: {results!r} is the repository root ({root}); give a folder name such as results")
    for name in SOURCE_FOLDERS:
        folder = root / name
        if target == folder or folder in target.parents:
            raise ConfigError(f"results: {results!r} is inside the repository's {name}/ folder ({target}), where a "
                              f"run would write among the project's own files; give a folder such as results")


def parse(config: dict, root=None) -> Plan:
    """Validate `config` (schema defaults already filled) and return its Plan; ConfigError names the first problem.
    `root`: the workflow's folder (the Snakefile's), against which `results` is checked (check_results)."""
    from ..methods import REGISTRY
    from ..scenarios import make_options

    scenario_types, references = {}, {}
    for name, options in config["scenarios"].items():
        cls, opts = make_options(name, options, f"scenarios.{name}")
        scenario_types[name] = cls.name
        references[name] = list(cls().references(opts))
        if not references[name] or references[name][0] != "retrain":
            raise ConfigError(f"scenarios.{name}: scenario type {cls.name!r} must declare `retrain` as its first "
                              f"reference oracle, got {references[name]}")
    reserved = {"original", *(n for names in references.values() for n in names)}
    check_results(config.get("results", "results"), root)
    for name, ds in config["datasets"].items():
        check_superclasses(name, ds)
        check_model(name, ds)
        for scenario in dataset_scenarios(config, name):
            if scenario not in config["scenarios"]:
                raise ConfigError(f"datasets.{name}.scenarios: scenario {scenario!r} is not configured under "
                                  f"`scenarios:`; add it there or remove it here")
        check_dataset(config, name)
    plan_experiments = experiments(config)
    tuning = _scenario_tuning(config, scenario_types)
    seeds = seed_list(config)
    runs, seen = {}, {}
    race = dict(config.get("tuning") or {"mode": "as_published"})
    race.setdefault("mode", "as_published")
    for name, spec in config["methods"].items():
        if race["mode"] == "equal_budget":
            spec = equal_budget_spec(name, spec, race)
        if name in reserved:
            raise ConfigError(f"methods.{name}: {name!r} is the name of a reference run (the scenarios' oracles and "
                              f"original: {', '.join(sorted(reserved))}); give the run another name")
        run, *points = _run_spec(name, spec, seeds)
        key = (run.setting, run.method)
        if key in seen:
            raise ConfigError(f"methods.{name}: runs {seen[key]!r} and {name!r} both run method {key[1]!r} in setting "
                              f"{key[0]!r}; a results table has one row per (setting, method): keep one, or put "
                              f"the variant in its own configuration with its own `results` folder")
        seen[key] = name
        for scenario in run.scenarios or ():
            if scenario not in config["scenarios"]:
                raise ConfigError(f"methods.{name}.scenarios: {scenario!r} is not a configured scenario "
                                  f"({', '.join(config['scenarios'])})")
        for kind, known in (("by_dataset", config["datasets"]), ("by_scenario", config["scenarios"])):
            for key_name in getattr(run, kind):
                if key_name not in known:
                    raise ConfigError(f"methods.{name}.{kind}.{key_name}: not a configured "
                                      f"{'dataset' if kind == 'by_dataset' else 'scenario'} ({', '.join(known)})")
        allowed = REGISTRY[run.method].scenarios
        for dataset, scenario in plan_experiments:
            if not run.applies_to(scenario):
                continue
            if allowed is not None and scenario_types[scenario] not in allowed:
                raise ConfigError(f"methods.{name}.method: {run.method!r} is defined for {', '.join(sorted(allowed))} "
                                  f"scenarios only, and scenario {scenario!r} is {scenario_types[scenario]!r}; "
                                  f"restrict the run with methods.{name}.scenarios: [...]")
            run.job(dataset, scenario)  # validates the overridden knobs where they apply
            tuned_by = tuning[scenario]["tuned_by"]
            if run.tune is not None and tuned_by is None and not _has_tuning_request(scenario_types[scenario]):
                from ..scenarios import REGISTRY as SCENARIOS

                like = SCENARIOS[scenario_types[scenario]].tunes_like
                raise ConfigError(f"methods.{name}.tune: scenario {scenario!r} is {scenario_types[scenario]!r}, which "
                                  f"has no tuning request of its own; set scenarios.{scenario}.tuned_by to a "
                                  f"{like or 'tuned'} scenario, or restrict the run with methods.{name}.scenarios")
            if run.tune is not None and tuned_by is not None and (
                    (dataset, tuned_by) not in plan_experiments or not run.applies_to(tuned_by)):
                raise ConfigError(f"scenarios.{scenario}.tuned_by: run {name!r} on dataset {dataset!r} reuses the "
                                  f"knobs tuned on {tuned_by!r}, which does not run there; run {tuned_by!r} on "
                                  f"{dataset!r} too, or drop tuned_by")
        runs[name] = run
        runs.update({p.name: p for p in points})
    for scenario in ((config.get("artifacts") or {}).get("uib") or {}).get("scenarios") or ():
        if scenario not in {s for _, s in plan_experiments}:
            raise ConfigError(f"artifacts.uib.scenarios: {scenario!r} is not a scenario any dataset runs "
                              f"({', '.join(dict.fromkeys(s for _, s in plan_experiments))})")
    from .jit import jit_plan

    jit = jit_plan(config, plan_experiments)  # artifacts.jit: its scenarios exist, run, and have JiT's evaluation sets
    scenario_seeds, seed_caps = {}, {}
    for name, entry in config["scenarios"].items():
        value = (entry or {}).get("seeds")
        if value is None:
            continue
        # N larger than the run's seed count (`--config seeds=2` on a config whose scenario asks for 3): all of them,
        # and the tables say so (Plan.seed_notes)
        if isinstance(value, int) and not isinstance(value, bool) and value > len(seeds):
            seed_caps[name] = (value, len(seeds))
        scenario_seeds[name] = seed_subset(value, seeds, f"scenarios.{name}.seeds")
    plan = Plan(experiments=plan_experiments, seeds=seeds, runs=runs, references=references, tuning=tuning, race=race,
                scenario_seeds=scenario_seeds, seed_caps=seed_caps, jit=jit,
                settings=_settings(config), datasets=copy.deepcopy(config["datasets"]),
                scenarios={name: scenario_options(config, name) for name in config["scenarios"]},
                uib_scenarios=list(((config.get("artifacts") or {}).get("uib") or {}).get("scenarios")
                                   or config["scenarios"]),
                resources={kind: job_resources(config, kind) for kind in RUNTIME_DEFAULTS},
                xs=copy.deepcopy(config.get("xs")),
                population=population_plan(config, plan_experiments, runs, _setting))
    return dataclasses.replace(plan, bias_groups=bias_strength_groups(config, plan))


# SLURM --time of a job kind when resources.<kind>.runtime is not given (minutes; the other keys' defaults are in
# config/schema.yaml's job_resources)
RUNTIME_DEFAULTS = {"train": 240, "unlearn": 60, "tune": 240}


def job_resources(config: dict, kind: str) -> dict:
    """Cluster resources of a training ("train"), unlearning ("unlearn") or tune ("tune") job: resources.<kind>
    (gpu, cpus_per_gpu, mem_mb filled by the schema), runtime from RUNTIME_DEFAULTS when not given. The SLURM
    executor turns them into --gpus, --cpus-per-gpu, --mem and --time; a local run ignores gpu, cpus_per_gpu and
    runtime. gpu: 0 makes a CPU job (then --cpus-per-task comes from threads)."""
    res = dict((config.get("resources") or {}).get(kind) or {})
    res.setdefault("runtime", RUNTIME_DEFAULTS[kind])
    if not res.get("gpu", 1):
        res.pop("cpus_per_gpu", None)
    return res


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    import yaml

    from .validation import SCHEMA

    return yaml.safe_load(SCHEMA.read_text())


def _schema_default(*path: str):
    """The default config/schema.yaml gives the key at `path` (the one place defaults live)."""
    node = _schema()
    for key in path:
        node = node["properties"][key]
    return copy.deepcopy(node.get("default"))


def _setting(config: dict, *path: str):
    """config[path...], or the schema's default where the config leaves it out (a config `validation.validate`
    filled has every key; one built in code may not)."""
    node = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _schema_default(*path)
        node = node[key]
    return node


def _settings(config: dict) -> dict:
    """The run-wide settings the rules read (Plan.settings)."""
    return {"results": _setting(config, "results"), "device": _setting(config, "device"),
            "data_seed": _setting(config, "data_seed"), "job_server": _setting(config, "job_server"),
            "report_original": _setting(config, "report_original"),
            "mirror": _setting(config, "data", "mirror"), "download_dir": _setting(config, "data", "download_dir"),
            "sparse_baseline": {k: _setting(config, "sparse_baseline", k) for k in ("epochs", "rewind", "rewind_epoch")}}


def _dataset_plan(config: dict, name: str, ds: dict) -> None:
    """Config-time checks of one dataset entry against the sizes it will have (experiment.planned_sizes): its
    splits can be made, its colours cover its classes, and every scenario on it can be built and evaluated."""
    from ..datasets.colour import PATTERN_MODES, TAB10
    from ..datasets.experiment import planned_sizes
    from ..evaluation.metrics import MIA_CV_FOLDS, MIN_EVAL_IMAGES
    from ..scenarios import make_options

    sizes = planned_sizes(name, ds)
    colour = ds.get("colour") or {}
    if colour.get("enabled", False):
        key = f"datasets.{name}.colour"
        palette = colour.get("palette", "tab10")
        colours = TAB10.tolist() if isinstance(palette, str) else [list(c) for c in palette]
        labels = " (coarse labels)" if ds.get("labels", "fine") == "coarse" else ""
        if len(colours) < sizes.n_classes:
            raise ConfigError(f"{key}.palette: {len(colours)} colours for the {sizes.n_classes} classes of source "
                              f"{ds['source']}{labels}; give at least {sizes.n_classes} distinct [r, g, b] colours "
                              f"(one per class), or set {key}.enabled: false")
        if len({tuple(c) for c in colours}) != len(colours):
            raise ConfigError(f"{key}.palette: colours must be distinct, or the bias cannot be read off the image")
        if sizes.rgb and colour.get("mode", "background") not in PATTERN_MODES:
            raise ConfigError(f"{key}.mode: {colour.get('mode', 'background')!r} recolours grayscale strokes and "
                              f"source {ds['source']} is RGB; use mode: patch or border, or set {key}.enabled: false")
    if int(sizes.test.sum()) < MIN_EVAL_IMAGES:
        raise SizeError(f"datasets.{name}.split: {int(sizes.test.sum())} test images; the membership-inference "
                        f"attack needs at least {MIN_EVAL_IMAGES}")
    for scenario in dataset_scenarios(config, name):
        where = f"scenarios.{scenario}"
        cls, options = make_options(scenario, config["scenarios"][scenario], where)
        cls().check(options, name, ds, where)
        n_forget = cls().plan(options, name, ds, sizes, where)
        if n_forget is not None and n_forget < MIN_EVAL_IMAGES:
            train_size = (ds.get("split") or {}).get("train_size")
            what = f"datasets.{name}.split.train_size: {train_size} leaves scenario {scenario}" \
                if train_size is not None else f"{where}: on dataset {name}, scenario {scenario} has"
            raise SizeError(f"{what} {n_forget} training images to forget; the "
                            f"membership-inference attack mia_loss_cv ({MIA_CV_FOLDS}-fold cross-validation of forget "
                            f"against test losses, unlearnbench.evaluation.metrics) needs at least "
                            f"{MIN_EVAL_IMAGES}: forget more "
                            f"({where}) or use more data (datasets.{name}.split.train_size)")
        if n_forget is not None and _tuned_here(config, scenario):
            tuning = tuning_options(scenario, config["scenarios"][scenario] or {})
            cls().plan_tuning(tuning, n_forget, name, sizes, f"{where}.tune_request")


def tuning_options(name: str, entry: dict):
    """Scenario `name`'s tuning request options: its config entry's options updated by `tune_request`, validated
    (ConfigError naming scenarios.<name>.tune_request)."""
    from ..scenarios import make_options

    options = {k: v for k, v in entry.items() if k not in SCENARIO_TUNING_KEYS}
    return make_options(name, {**options, **(entry.get("tune_request") or {})}, f"scenarios.{name}.tune_request")[1]


def _tuned_here(config: dict, scenario: str) -> bool:
    """Whether the tune stage builds a tuning request for `scenario`: a run with `tune` runs on it and it does not
    reuse another scenario's knobs (`tuned_by`)."""
    if (config["scenarios"][scenario] or {}).get("tuned_by"):
        return False
    return any(run.get("tune") and (run.get("scenarios") is None or scenario in run["scenarios"])
               for run in (config.get("methods") or {}).values())


# architectures that have a choice of classifier head (models.VGG_HEADS): checked here so that a config error stops
# before any job
HEAD_ARCHS = ("vgg11", "vgg11_bn")


def check_model(name: str, ds: dict) -> None:
    """datasets.<name>.model: what the model builders would refuse inside the training job, refused at config
    time (torch-free)."""
    model = ds.get("model") or {}
    arch = model.get("arch", "small_cnn")
    if model.get("head") is not None and arch not in HEAD_ARCHS:
        raise ConfigError(f"datasets.{name}.model.head: only {' and '.join(HEAD_ARCHS)} have a choice of classifier "
                          f"head; remove the key for {arch}")


def check_dataset(config: dict, name: str) -> None:
    """_dataset_plan, and where a size problem could be fixed by a larger `split.train_size`, the smallest that
    works (found by trying the sizes above the configured one with the same rules)."""
    ds = config["datasets"][name]
    try:
        _dataset_plan(config, name, ds)
    except SizeError as exc:
        split = ds.get("split") or {}
        current = split.get("train_size")
        if current is None:
            raise
        try:  # if even all of the data does not work, no train_size will
            _dataset_plan(config, name, {**ds, "split": {k: v for k, v in split.items() if k != "train_size"}})
        except ConfigError:
            raise exc from None
        full = _dataset_full_train(ds)
        for size in range(current + 1, full + 1):
            trial = {**ds, "split": {**split, "train_size": size}}
            try:
                _dataset_plan(config, name, trial)
            except SizeError:
                continue
            except ConfigError:
                break
            raise SizeError(f"{exc}. The smallest datasets.{name}.split.train_size that works here is {size}"
                            + (" (all of the data)" if size == full else "")) from None
        raise


def _dataset_full_train(ds: dict) -> int:
    """Training images available before a train_size subset (the whole train split, after a test carve)."""
    from ..datasets.experiment import planned_sizes

    split = {k: v for k, v in (ds.get("split") or {}).items() if k != "train_size"}
    sizes = planned_sizes("_", {**ds, "split": split})
    return int(sizes.train.sum() + sizes.val.sum())


def check_superclasses(name: str, ds: dict) -> None:
    """`labels: coarse` needs built-in coarse labels (cifar100) or a declared `superclasses` map that puts every
    fine class of the source in exactly one superclass; a map without `labels: coarse` is a mistake."""
    from ..datasets import DATASETS
    from ..datasets.experiment import coarse_map

    superclasses = ds.get("superclasses")
    coarse = ds.get("labels", "fine") == "coarse"
    if superclasses and not coarse:
        raise ConfigError(f"datasets.{name}.superclasses: a superclass map is used only with labels: coarse; set "
                          f"datasets.{name}.labels: coarse or remove the map")
    if coarse and not superclasses and ds["source"] != "cifar100":
        raise ConfigError(f"datasets.{name}.labels: coarse labels are built in only for source cifar100, not "
                          f"{ds['source']!r}; declare them with datasets.{name}.superclasses: {{name: [fine "
                          f"classes], ...}}")
    if superclasses:
        try:
            coarse_map(superclasses, len(DATASETS[ds["source"]].class_names), f"datasets.{name}.superclasses")
        except ValueError as error:
            raise ConfigError(str(error)) from None


def check_config(config: dict) -> None:
    """Raise ConfigError naming the key of the first problem the schema cannot see."""
    parse(config)


def dataset_scenarios(config: dict, dataset: str) -> list[str]:
    """The scenarios run on a dataset: its own `scenarios` list, else every configured scenario."""
    return list(config["datasets"][dataset].get("scenarios", config["scenarios"]))


def experiments(config: dict) -> list[tuple[str, str]]:
    """Every (dataset, scenario) pair the configuration runs."""
    return [(d, s) for d in config["datasets"] for s in dataset_scenarios(config, d)]


def seed_list(config: dict) -> list[int]:
    seeds = config["seeds"]
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def scenario_options(config: dict, scenario: str) -> dict:
    """A scenario's config entry with its options' defaults filled in and its `type` (what the request job gets)."""
    from ..scenarios import make_options

    cls, options = make_options(scenario, config["scenarios"][scenario], f"scenarios.{scenario}")
    return {"type": cls.name, **as_dict(options)}


def bias_strength_groups(config: dict, plan: Plan) -> dict[str, dict]:
    """The datasets fig_bias_strength plots: every dataset running a bias-type scenario, as dataset -> {scenario,
    bias_strength, group}. A group is the datasets whose entries are equal but for `label`, `scenarios` and
    `colour.bias_strength` (so a line over s changes nothing else); it is titled by its source, numbered when two
    groups share one."""
    import json

    from ..scenarios import make_options

    keys, found = {}, {}
    for dataset, scenario in plan.experiments:
        cls, _ = make_options(scenario, config["scenarios"][scenario], f"scenarios.{scenario}")
        if cls.name != "bias":
            continue
        ds = config["datasets"][dataset]
        entry = {k: v for k, v in ds.items() if k not in ("label", "scenarios")}
        entry["colour"] = {k: v for k, v in entry.get("colour", {}).items() if k != "bias_strength"}
        key = keys.setdefault((json.dumps(entry, sort_keys=True), scenario), len(keys))
        found[dataset] = {"scenario": scenario, "bias_strength": float(ds["colour"]["bias_strength"]),
                          "source": ds["source"], "key": key}
    by_source: dict[str, list[int]] = {}
    for info in found.values():
        by_source.setdefault(info["source"], [])
        if info["key"] not in by_source[info["source"]]:
            by_source[info["source"]].append(info["key"])
    for info in found.values():
        keys_here = by_source[info["source"]]
        info["group"] = info["source"] + (f" #{keys_here.index(info['key']) + 1}" if len(keys_here) > 1 else "")
        del info["key"], info["source"]
    return found


def is_bias_strength_sweep(groups: dict[str, dict]) -> bool:
    """Whether some group of bias datasets spans at least two bias strengths (fig_bias_strength is then made)."""
    values: dict[str, set] = {}
    for info in groups.values():
        values.setdefault(info["group"], set()).add(info["bias_strength"])
    return any(len(v) >= 2 for v in values.values())
