"""The run configuration, parsed once: validation beyond the JSON schema, and the specs every rule reads.

The schema (config/schema.yaml) checks structure and ranges and fills defaults; `parse(config)` checks what a schema
cannot (every method, wrapper and scenario exists in its registry, every knob is known, typed, finite and in range,
scenario options fit their datasets, per-scenario overrides are valid where they apply) and returns a `Plan`: the
experiments, seeds and one `RunSpec` per run. Every error is a ConfigError naming the config key and the fix.
Torch-free: the Snakefile process imports this module (registries load their modules, which import torch lazily).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .codehash import code_hash
from .errors import ConfigError
from .knobs import as_dict

REFERENCE_RUNS = ("retrain", "original")
# a run's keys that are not method knobs
RUN_KEYS = ("method", "setting", "setting_knobs", "scenarios", "by_scenario", "by_dataset")


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

    def applies_to(self, scenario: str) -> bool:
        return self.scenarios is None or scenario in self.scenarios

    def resolved(self, dataset: str, scenario: str) -> tuple[dict, dict]:
        """(knobs, setting knobs) as given in config for one experiment: base < by_dataset < by_scenario."""
        knobs, s_knobs = {}, {}
        for layer in (self.by_dataset.get(dataset) or {}, self.by_scenario.get(scenario) or {}):
            knobs.update({k: v for k, v in layer.items() if k != "setting_knobs"})
            s_knobs.update(layer.get("setting_knobs") or {})
        return knobs, s_knobs

    def job(self, dataset: str, scenario: str) -> dict:
        """Plain dict handed to the unlearning job: who it is, what it runs (knobs with defaults filled), the model it
        starts from and the hash of its code (a change reruns exactly this run's jobs)."""
        from .methods import REGISTRY, WRAPPERS, make_knobs, make_setting_knobs

        knob_over, setting_over = self.resolved(dataset, scenario)
        where = f"methods.{self.name}"
        knobs = as_dict(make_knobs(self.method, {**self.knobs, **knob_over}, where))
        modules = [REGISTRY[self.method].__module__]
        start, start_params, s_knobs = "baseline", {}, {}
        if self.setting in WRAPPERS:
            wrapper = WRAPPERS[self.setting]
            s_obj = make_setting_knobs(self.setting, {**self.setting_knobs, **setting_over}, where, self.method)
            s_knobs = as_dict(s_obj)
            start, start_params = wrapper.start, wrapper.start_params(s_obj)
            modules.append(wrapper.__module__)
        return {"run": self.name, "method": self.method, "setting": self.setting, "knobs": knobs,
                "setting_knobs": s_knobs, "overridden": sorted({*knob_over, *(f"setting_knobs.{k}" for k in setting_over)}),
                "start": start, "start_params": start_params, "code": code_hash(*modules)}


@dataclass(frozen=True)
class Plan:
    """Everything the rules need from a validated config."""

    experiments: list[tuple[str, str]]  # (dataset, scenario) pairs
    seeds: list[int]
    runs: dict[str, RunSpec]
    _jobs: dict = field(default_factory=dict, repr=False, compare=False)

    def runs_for(self, scenario: str) -> list[str]:
        return [name for name, spec in self.runs.items() if spec.applies_to(scenario)]

    def job(self, run: str, dataset: str, scenario: str) -> dict:
        """RunSpec.job, computed once per (run, dataset, scenario)."""
        key = (run, dataset, scenario)
        if key not in self._jobs:
            self._jobs[key] = self.runs[run].job(dataset, scenario)
        return self._jobs[key]


def _run_spec(name: str, spec: dict) -> RunSpec:
    from .methods import STANDARD, make_knobs, make_setting_knobs

    where = f"methods.{name}"
    knobs = {k: v for k, v in spec.items() if k not in RUN_KEYS}
    make_knobs(spec["method"], knobs, where)
    setting = spec.get("setting", STANDARD)
    make_setting_knobs(setting, spec.get("setting_knobs"), where, spec["method"])
    scenarios = spec.get("scenarios")
    return RunSpec(name=name, method=spec["method"], setting=setting, knobs=knobs,
                   setting_knobs=dict(spec.get("setting_knobs") or {}),
                   scenarios=None if scenarios is None else tuple(scenarios),
                   by_dataset=dict(spec.get("by_dataset") or {}), by_scenario=dict(spec.get("by_scenario") or {}))


def parse(config: dict) -> Plan:
    """Validate `config` (schema defaults already filled) and return its Plan; ConfigError names the first problem."""
    from .methods import REGISTRY
    from .scenarios import make_options

    scenario_types = {}
    for name, options in config["scenarios"].items():
        cls, _ = make_options(name, options, f"scenarios.{name}")
        scenario_types[name] = cls.name
    results = str(config.get("results", "results")).strip()
    if results in ("", "/", ".") or results.rstrip("/") == "":
        raise ConfigError(f"results: {config.get('results')!r} is not a usable output folder (it would write into "
                          f"the repository root or /); give a folder name such as results")
    for name, ds in config["datasets"].items():
        check_superclasses(name, ds)
        for scenario in dataset_scenarios(config, name):
            if scenario not in config["scenarios"]:
                raise ConfigError(f"datasets.{name}.scenarios: scenario {scenario!r} is not configured under "
                                  f"`scenarios:`; add it there or remove it here")
            cls, options = make_options(scenario, config["scenarios"][scenario], f"scenarios.{scenario}")
            cls().check(options, name, ds, f"scenarios.{scenario}")
    plan_experiments = experiments(config)
    runs, seen = {}, {}
    for name, spec in config["methods"].items():
        run = _run_spec(name, spec)
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
        runs[name] = run
    from .jit_report import jit_plan

    jit_plan(config)  # artifacts.jit: its scenarios exist, run, and have JiT's evaluation sets
    return Plan(experiments=plan_experiments, seeds=seed_list(config), runs=runs)


def check_superclasses(name: str, ds: dict) -> None:
    """`labels: coarse` needs built-in coarse labels (cifar100) or a declared `superclasses` map that puts every
    fine class of the source in exactly one superclass; a map without `labels: coarse` is a mistake."""
    from .datasets import DATASETS
    from .experiment import coarse_map

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
    from .scenarios import make_options

    cls, options = make_options(scenario, config["scenarios"][scenario], f"scenarios.{scenario}")
    return {"type": cls.name, **as_dict(options)}
