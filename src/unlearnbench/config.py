"""Workflow configuration: validation beyond the JSON schema, and the helpers the Snakefile uses.

The schema (config/schema.yaml) checks structure and ranges and fills defaults; here we check what a
schema cannot: that every method exists in the registry and that its knobs are known and in range.
Every error names the config key.
"""
from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

from .methods.base import ConfigError

SCENARIOS = ("bias", "random", "full_class", "sub_class", "random_n")
REFERENCE_RUNS = ("retrain", "original")
RUN_KEYS = ("method", "setting", "setting_knobs")  # a run's keys that are not method knobs


def check_config(config: dict) -> None:
    """Raise ConfigError naming the key of the first problem the schema cannot see."""
    from .methods import make_knobs, make_setting_knobs

    seen = {}
    for run, spec in config["methods"].items():
        key = (spec.get("setting", "standard"), spec["method"])
        if key in seen:
            raise ConfigError(f"methods.{run}: runs {seen[key]!r} and {run!r} both run method {key[1]!r} in setting "
                              f"{key[0]!r}; a results table has one row per (setting, method): keep one, or put "
                              f"the variant in its own configuration with its own `results` folder")
        seen[key] = run
        knobs = {k: v for k, v in spec.items() if k not in RUN_KEYS}
        make_knobs(spec["method"], knobs, where=f"methods.{run}")
        make_setting_knobs(spec.get("setting", "standard"), spec.get("setting_knobs") or {}, where=f"methods.{run}",
                           method=spec["method"])
    for name, ds in config["datasets"].items():
        for scenario in ds.get("scenarios", []):
            if scenario not in config["scenarios"]:
                raise ConfigError(f"datasets.{name}.scenarios: scenario {scenario!r} is not configured under "
                                  f"`scenarios:`; add it there or remove it here")
        if "bias" in dataset_scenarios(config, name) and not ds.get("colour", {}).get("enabled", True):
            raise ConfigError(f"datasets.{name}.colour.enabled: the bias scenario needs coloured data; "
                              f"enable colour or set datasets.{name}.scenarios without bias")
        if ds.get("labels", "fine") == "coarse" and ds["source"] != "cifar100":
            raise ConfigError(f"datasets.{name}.labels: coarse labels exist only for source cifar100, "
                              f"not {ds['source']!r}")
        if "sub_class" in dataset_scenarios(config, name) and ds.get("labels", "fine") != "coarse":
            raise ConfigError(f"datasets.{name}.labels: the sub_class scenario trains on coarse labels and "
                              f"forgets one fine class; set labels: coarse (source cifar100) or set "
                              f"datasets.{name}.scenarios without sub_class")


def dataset_scenarios(config: dict, dataset: str) -> list[str]:
    """The scenarios run on a dataset: its own `scenarios` list, else every configured scenario."""
    return list(config["datasets"][dataset].get("scenarios", config["scenarios"]))


def experiments(config: dict) -> list[tuple[str, str]]:
    """Every (dataset, scenario) pair the configuration runs."""
    return [(d, s) for d in config["datasets"] for s in dataset_scenarios(config, d)]


def seed_list(config: dict) -> list[int]:
    seeds = config["seeds"]
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def method_knobs(config: dict, run: str) -> dict:
    """A run's knobs with the method's defaults filled in (what the job actually uses)."""
    from dataclasses import asdict
    from .methods import make_knobs

    spec = config["methods"][run]
    knobs = {k: v for k, v in spec.items() if k not in RUN_KEYS}
    return asdict(make_knobs(spec["method"], knobs, where=f"methods.{run}"))


def setting_knobs(config: dict, run: str) -> dict:
    """A run's setting knobs with the setting's defaults filled in (what the job actually uses)."""
    from dataclasses import asdict
    from .methods import make_setting_knobs

    spec = config["methods"][run]
    return asdict(make_setting_knobs(spec.get("setting", "standard"), spec.get("setting_knobs") or {},
                                     where=f"methods.{run}", method=spec["method"]))


def method_source_hash(method: str) -> str:
    """sha256 of the method's module source: editing one method's module reruns only that method."""
    from .methods import REGISTRY

    module = inspect.getmodule(REGISTRY[method])
    return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()[:16]


def setting_source_hash() -> str:
    """sha256 of the settings module (sparsity, uib): editing it reruns every run."""
    from .methods import settings

    return hashlib.sha256(Path(settings.__file__).read_bytes()).hexdigest()[:16]
