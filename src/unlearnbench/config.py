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
from .errors import ConfigError, SizeError
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
    # scenario -> its reference oracles' run names (`retrain` first), as its type declares them (Scenario.references)
    references: dict[str, list[str]] = field(default_factory=dict)
    _jobs: dict = field(default_factory=dict, repr=False, compare=False)

    def oracles(self, scenario: str) -> list[str]:
        """The reference oracles trained for a scenario (`retrain` first)."""
        return self.references.get(scenario, ["retrain"])

    @property
    def all_oracles(self) -> list[str]:
        """Every reference oracle name of the configured scenarios (for the oracle rule's wildcard)."""
        return list(dict.fromkeys(["retrain", *(n for names in self.references.values() for n in names)]))

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

    scenario_types, references = {}, {}
    for name, options in config["scenarios"].items():
        cls, opts = make_options(name, options, f"scenarios.{name}")
        scenario_types[name] = cls.name
        references[name] = list(cls().references(opts))
        if not references[name] or references[name][0] != "retrain":
            raise ConfigError(f"scenarios.{name}: scenario type {cls.name!r} must declare `retrain` as its first "
                              f"reference oracle, got {references[name]}")
    reserved = {"original", *(n for names in references.values() for n in names)}
    results = str(config.get("results", "results")).strip()
    if results in ("", "/", ".") or results.rstrip("/") == "":
        raise ConfigError(f"results: {config.get('results')!r} is not a usable output folder (it would write into "
                          f"the repository root or /); give a folder name such as results")
    for name, ds in config["datasets"].items():
        if ds.get("labels", "fine") == "coarse" and ds["source"] != "cifar100":
            raise ConfigError(f"datasets.{name}.labels: coarse labels exist only for source cifar100, "
                              f"not {ds['source']!r}")
        for scenario in dataset_scenarios(config, name):
            if scenario not in config["scenarios"]:
                raise ConfigError(f"datasets.{name}.scenarios: scenario {scenario!r} is not configured under "
                                  f"`scenarios:`; add it there or remove it here")
        check_dataset(config, name)
    plan_experiments = experiments(config)
    runs, seen = {}, {}
    for name, spec in config["methods"].items():
        if name in reserved:
            raise ConfigError(f"methods.{name}: {name!r} is the name of a reference run (the scenarios' oracles and "
                              f"original: {', '.join(sorted(reserved))}); give the run another name")
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
    return Plan(experiments=plan_experiments, seeds=seed_list(config), runs=runs, references=references)


def _dataset_plan(config: dict, name: str, ds: dict) -> None:
    """Config-time checks of one dataset entry against the sizes it will have (experiment.planned_sizes): its
    splits can be made, its colours cover its classes, and every scenario on it can be built and evaluated."""
    from .colour import PATTERN_MODES, TAB10
    from .experiment import planned_sizes
    from .metrics import MIA_CV_FOLDS, MIN_EVAL_IMAGES
    from .scenarios import make_options

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
                            f"against test losses, unlearnbench.metrics) needs at least {MIN_EVAL_IMAGES}: forget more "
                            f"({where}) or use more data (datasets.{name}.split.train_size)")


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
    from .experiment import planned_sizes

    split = {k: v for k, v in (ds.get("split") or {}).items() if k != "train_size"}
    sizes = planned_sizes("_", {**ds, "split": split})
    return int(sizes.train.sum() + sizes.val.sum())


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


def bias_strength_groups(config: dict, plan: Plan) -> dict[str, dict]:
    """The datasets fig_bias_strength plots: every dataset running a bias-type scenario, as dataset -> {scenario,
    bias_strength, group}. A group is the datasets whose entries are equal but for `label`, `scenarios` and
    `colour.bias_strength` (so a line over s changes nothing else); it is titled by its source, numbered when two
    groups share one."""
    import json

    from .scenarios import make_options

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
