"""The population stage a configuration asks for (`population:`, docs/forget_quality.md), checked at config time.

population_plan returns the (dataset, scenario, runs) the stage evaluates and its settings, or None without a
`population` block; every problem is a ConfigError naming the key, before any job."""
from __future__ import annotations

from ..core.errors import ConfigError

SETTINGS = ("size", "protocol", "variance", "retain_sample", "bootstrap")


def population_plan(config: dict, experiments: list[tuple[str, str]], runs: dict, setting) -> dict | None:
    """`setting(config, *path)`: the config value or the schema's default (config.plan._setting)."""
    block = config.get("population")
    if block is None:
        return None
    settings = {key: setting(config, "population", key) for key in SETTINGS}
    scenarios, datasets = block["scenarios"], block.get("datasets")
    for name in scenarios:
        if name not in config["scenarios"]:
            raise ConfigError(f"population.scenarios: {name!r} is not a configured scenario "
                              f"({', '.join(config['scenarios'])})")
    for name in datasets or ():
        if name not in config["datasets"]:
            raise ConfigError(f"population.datasets: {name!r} is not a configured dataset "
                              f"({', '.join(config['datasets'])})")
    base_runs = [name for name, spec in runs.items() if spec.sweep_of is None]
    for name in block.get("methods") or ():
        if name not in runs:
            raise ConfigError(f"population.methods: {name!r} is not a run under `methods` "
                              f"({', '.join(base_runs)}); add it there or remove it here")
        if runs[name].sweep_of is not None:
            raise ConfigError(f"population.methods: {name!r} is a sweep point of {runs[name].sweep_of!r}; list the "
                              f"run itself")
        if not any(runs[name].applies_to(s) for s in scenarios):
            raise ConfigError(f"population.methods: run {name!r} runs on none of population.scenarios "
                              f"({', '.join(scenarios)}); remove it or restrict methods.{name}.scenarios differently")
    chosen = list(block.get("methods") or base_runs)
    out = []
    for scenario in scenarios:
        pairs = [(d, s) for d, s in experiments if s == scenario and (datasets is None or d in datasets)]
        if not pairs:
            raise ConfigError(f"population.scenarios: no dataset{' of population.datasets' if datasets else ''} runs "
                              f"scenario {scenario!r}; add it to a dataset's `scenarios` or remove it here")
        run_names = [r for r in chosen if runs[r].applies_to(scenario)]
        if not run_names:
            raise ConfigError(f"population.scenarios: no method run of population.methods runs on {scenario!r}")
        out += [{"dataset": d, "scenario": s, "runs": run_names} for d, s in pairs]
    return {**settings, "experiments": out}
