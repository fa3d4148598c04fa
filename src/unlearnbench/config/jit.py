"""The artifacts a configuration asks for, planned from the config alone (torch-free): which JiT tables, breakdowns and
figures `artifacts.jit` makes (docs/jit.md). The artifacts themselves are unlearnbench.artifacts.jit.
"""
from __future__ import annotations

from ..core.errors import ConfigError

BREAKDOWN_TYPES = ("full_class", "sub_class")  # the scenario types of Tables 7-11 (a forget class per scenario)


def jit_plan(config: dict, experiments: list[tuple[str, str]]) -> dict | None:
    """What `artifacts.jit` asks for (None: no JiT artifacts): the scenarios with a table (config order), each one's
    evaluation kind and type, the breakdown groups (dataset, type, scenarios: every dataset running >= 2 of the
    tables' scenarios of one type in BREAKDOWN_TYPES), and the figure switches. ConfigError names the key of a bad entry.
    `experiments`: every (dataset, scenario) pair the configuration runs (Plan.experiments). Called once, by
    config.plan.parse: the rules read its result as PLAN.jit."""
    from ..scenarios import make_options

    artifacts = config.get("artifacts") or {}
    if "jit" not in artifacts:
        return None
    cfg = artifacts["jit"] or {}
    pairs = experiments
    run = list(dict.fromkeys(s for _, s in pairs))
    kinds, evaluation = {}, {}
    for name in config["scenarios"]:
        cls, options = make_options(name, config["scenarios"][name], f"scenarios.{name}")
        kinds[name], evaluation[name] = cls.name, cls().evaluation_of(options)
    wanted = cfg.get("scenarios")
    if wanted is None:
        scenarios = [s for s in run if evaluation[s]]
    else:
        for s in wanted:
            if s not in config["scenarios"]:
                raise ConfigError(f"artifacts.jit.scenarios: {s!r} is not a configured scenario "
                                  f"({', '.join(config['scenarios'])})")
            if s not in run:
                raise ConfigError(f"artifacts.jit.scenarios: no dataset runs scenario {s!r}; add it to a "
                                  f"datasets.<name>.scenarios list")
            if evaluation[s] is None:
                raise ConfigError(f"artifacts.jit.scenarios: {s!r} is a {kinds[s]} scenario, for which JiT's tables "
                                  f"define no D_r / D_f sets (they cover full_class, sub_class, random, random_n, "
                                  f"worst_case)")
        scenarios = list(wanted)
    if not scenarios:
        raise ConfigError("artifacts.jit: no scenario this configuration runs is one JiT's tables define "
                          "(full_class, sub_class, random, random_n, worst_case); add one or remove artifacts.jit")
    breakdowns = []
    if cfg.get("breakdown", True):
        for dataset in config["datasets"]:
            by_type: dict[str, list[str]] = {}
            for d, s in pairs:
                if d == dataset and s in scenarios:
                    by_type.setdefault(kinds[s], []).append(s)
            breakdowns += [(dataset, kind, names) for kind, names in by_type.items()
                           if kind in BREAKDOWN_TYPES and len(names) >= 2]
    return {"scenarios": scenarios, "evaluation": {s: evaluation[s] for s in scenarios},
            "types": {s: kinds[s] for s in scenarios}, "breakdowns": breakdowns,
            "entropy": bool(cfg.get("entropy", True)), "runtime": bool(cfg.get("runtime", True)),
            "toy": bool(cfg.get("toy", True))}
