"""Sweeps and tuning searches of a run, as config declares them (torch-free: the Snakefile parses them).

A run's knob values are written flat here: a method knob by its name (`lr`), a setting (wrapper) knob as
`setting_knobs.<name>` (`setting_knobs.beta`). In config both nest as in `by_scenario`:
`{lr: ..., setting_knobs: {beta: ...}}`.

- `sweep:` a grid, {knob: [values]} (cartesian product) and/or `sweep_list:` a list of points, [{knob: value}];
  every point is its own run, named `<run>~<knob>=<value>~...` (`point_name`), evaluated on every seed like any run.
- `tune:` a search of the knob space on validation data (unlearnbench.tuning.tuning, docs/tuning.md): `search: grid` tries
  every point of `space` (a grid or a list, default the run's sweep); `search: tpe` runs Optuna's TPE over `space`
  (lists: categorical; {low, high, log, step}: a range) for `trials` trials.
Values are validated by the caller (unlearnbench.config.plan) like every knob; this module checks shapes and names.
"""
from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field

from ..core.errors import ConfigError

SETTING_PREFIX = "setting_knobs."
POINT_SEPARATOR = "~"
# characters a sweep point's run name may hold (it is a path component and a Snakemake wildcard value)
RUN_NAME = r"[a-z][a-z0-9_]*(?:~[A-Za-z0-9_.+=-]+)*"
MAX_RUN_NAME = 150

# objective terms of the tuning search: |metric(unlearned) − metric(tuning oracle)| on data the tune stage may read
# (the tuning request's forget and retain points, the validation split); docs/tuning.md
TERMS = {
    "forget_acc": "accuracy on the tuning request's forget set",
    "mia": "MIA-Efficacy (SVC on true-label confidence; members: tuning retain points, non-members: validation "
           "split) on the tuning forget set",
    "val_acc": "accuracy on the validation split (rendered as the test split is: on coloured data, colours drawn "
               "independently of the label)",
    "retain_acc": "accuracy on (a fixed subsample of) the tuning request's retain set",
    "bias": "Cramér's V between colour and prediction on the validation split rendered so (coloured datasets "
            "only)",
}
DEFAULT_OBJECTIVE = {"forget_acc": 1.0, "mia": 1.0, "val_acc": 1.0, "bias": 1.0}
SEARCHES = ("grid", "tpe")
TUNE_KEYS = ("search", "space", "trials", "startup_trials", "seed", "seeds", "objective")


def is_point(run: str) -> bool:
    """Whether a run name is a sweep point (`jit~sigma=0.1`)."""
    return POINT_SEPARATOR in str(run)


def base_run(run: str) -> str:
    return str(run).split(POINT_SEPARATOR, 1)[0]


def flatten(values: dict | None, where: str) -> dict:
    """{knob: v, setting_knobs: {k: v}} → {knob: v, "setting_knobs.k": v}."""
    flat = {}
    for key, value in (values or {}).items():
        if key == "setting_knobs":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.setting_knobs: expected a mapping of setting knobs, got {value!r}")
            flat.update({SETTING_PREFIX + k: v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def split(flat: dict) -> tuple[dict, dict]:
    """(method knobs, setting knobs) of a flat point."""
    knobs = {k: v for k, v in flat.items() if not k.startswith(SETTING_PREFIX)}
    s_knobs = {k[len(SETTING_PREFIX):]: v for k, v in flat.items() if k.startswith(SETTING_PREFIX)}
    return knobs, s_knobs


def value_text(value) -> str:
    """A knob value as it appears in a run name: shortest round-trip repr for floats (so distinct values give
    distinct names), str otherwise."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def key_order(flat_keys) -> list[str]:
    """Method knobs first, then setting knobs, each sorted: a point's name does not depend on YAML key order."""
    return sorted(flat_keys, key=lambda k: (k.startswith(SETTING_PREFIX), k))


def point_label(key: str, method_knobs) -> str:
    """A flat key as shown in names and figures: setting knobs by their bare name unless the method has a knob of
    the same name (then `setting.<name>`)."""
    if key.startswith(SETTING_PREFIX):
        bare = key[len(SETTING_PREFIX):]
        return f"setting.{bare}" if bare in method_knobs else bare
    return key


def point_name(run: str, point: dict, method_knobs, where: str) -> str:
    """`<run>~<knob>=<value>~...`: readable, deterministic, unique per point."""
    parts = [f"{point_label(k, method_knobs)}={value_text(point[k])}" for k in key_order(point)]
    name = POINT_SEPARATOR.join([run, *parts])
    if not re.fullmatch(RUN_NAME, name):
        raise ConfigError(f"{where}: point {point} gives the run name {name!r}, which holds characters a path "
                          f"or Snakemake wildcard cannot carry; use plain numbers or identifiers as values")
    if len(name) > MAX_RUN_NAME:
        raise ConfigError(f"{where}: point {point} gives a run name of {len(name)} characters ({name!r}); "
                          f"sweep fewer knobs at once (at most {MAX_RUN_NAME} characters)")
    return name


def grid(axes: dict) -> list[dict]:
    """The cartesian product of {flat key: [values]}, keys in `key_order`, values in the order given."""
    keys = key_order(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def _check_values(where: str, key: str, values) -> list:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}.{key}: expected a non-empty list of values, got {values!r}")
    seen = set()
    for v in values:
        marker = json.dumps(v, sort_keys=True)
        if marker in seen:
            raise ConfigError(f"{where}.{key}: value {v!r} is listed twice")
        seen.add(marker)
    return values


def _check_points(where: str, points: list[dict]) -> list[dict]:
    seen = set()
    for i, p in enumerate(points):
        marker = json.dumps(p, sort_keys=True)
        if marker in seen:
            raise ConfigError(f"{where}[{i}]: point {p} is listed twice")
        seen.add(marker)
    return points


def parse_sweep(where: str, spec: dict) -> list[tuple[str, dict]]:
    """[(config key of the point, flat point)] of a run's `sweep` (grid) and `sweep_list` (points), in order: the
    grid's points first (key `<where>.sweep`), then the list's (`<where>.sweep_list[i]`)."""
    out = []
    if spec.get("sweep") is not None:
        sweep = spec["sweep"]
        if not isinstance(sweep, dict) or not sweep:
            raise ConfigError(f"{where}.sweep: expected a mapping {{knob: [values]}}, got {sweep!r}")
        axes = flatten(sweep, f"{where}.sweep")
        for key, values in axes.items():
            _check_values(f"{where}.sweep", key, values)
        out += [(f"{where}.sweep", p) for p in grid(axes)]
    if spec.get("sweep_list") is not None:
        listed = spec["sweep_list"]
        if not isinstance(listed, list) or not listed:
            raise ConfigError(f"{where}.sweep_list: expected a non-empty list of points [{{knob: value}}, ...]")
        points = []
        for i, p in enumerate(listed):
            if not isinstance(p, dict) or not p:
                raise ConfigError(f"{where}.sweep_list[{i}]: expected a non-empty mapping {{knob: value}}, got {p!r}")
            points.append((f"{where}.sweep_list[{i}]", flatten(p, f"{where}.sweep_list[{i}]")))
        out += points
    seen = {}
    for point_where, p in out:
        marker = json.dumps(p, sort_keys=True)
        if marker in seen:
            raise ConfigError(f"{point_where}: point {p} is listed twice (also at {seen[marker]})")
        seen[marker] = point_where
    return out


# ---------------------------------------------------------------------------------------------- tuning searches

@dataclass(frozen=True)
class Dimension:
    """One tuned knob of a TPE search: a list of choices, or a numeric range (log-uniform when `log`)."""

    key: str
    kind: str  # choice | float | int
    choices: tuple = ()
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None

    def as_dict(self) -> dict:
        return {"key": self.key, "kind": self.kind, "choices": list(self.choices), "low": self.low,
                "high": self.high, "log": self.log, "step": self.step}


@dataclass(frozen=True)
class TuneSpec:
    """A run's `tune:` block, validated. `points` (grid search) or `dimensions` (TPE) hold the searched space."""

    search: str
    points: tuple = ()
    dimensions: tuple = ()
    trials: int = 0
    startup_trials: int = 10
    seed: int = 0
    seeds: tuple = ()
    objective: dict = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """The flat keys the search sets."""
        if self.search == "grid":
            return key_order({k for p in self.points for k in p})
        return [d.key for d in self.dimensions]

    def as_dict(self) -> dict:
        """JSON-able (what the tune job receives as a param)."""
        return {"search": self.search, "points": [dict(p) for p in self.points],
                "dimensions": [d.as_dict() for d in self.dimensions], "trials": self.trials,
                "startup_trials": self.startup_trials, "seed": self.seed, "seeds": list(self.seeds),
                "objective": dict(self.objective)}


def _range(where: str, key: str, value: dict, kind: type) -> Dimension:
    unknown = set(value) - {"low", "high", "log", "step"}
    if unknown or "low" not in value or "high" not in value:
        raise ConfigError(f"{where}.{key}: a range is {{low: ..., high: ..., log: true|false, step: ...}}"
                          + (f"; unknown key {sorted(unknown)[0]!r}" if unknown else "; give low and high"))
    if kind not in (int, float):
        raise ConfigError(f"{where}.{key}: a {kind.__name__} knob is searched over a list of values, not a range")
    low, high, log, step = value["low"], value["high"], bool(value.get("log", False)), value.get("step")
    for name, v in (("low", low), ("high", high)) + ((("step", step),) if step is not None else ()):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or (kind is int and not isinstance(v, int)):
            raise ConfigError(f"{where}.{key}.{name}: expected a finite {kind.__name__}, got {v!r}")
    if not low < high:
        raise ConfigError(f"{where}.{key}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}.{key}.low: a log range needs low > 0, got {low}")
    if log and step is not None:
        raise ConfigError(f"{where}.{key}.step: a log range takes no step")
    if step is not None and step <= 0:
        raise ConfigError(f"{where}.{key}.step: must be > 0, got {step}")
    cast = float if kind is float else int
    return Dimension(key, kind.__name__, low=cast(low), high=cast(high), log=log,
                     step=None if step is None else cast(step))


def parse_tune(where: str, tune: dict, sweep_points: list[dict], *, knob_type, validate, fixed_keys: set,
               seeds: list[int]) -> TuneSpec:
    """Validate a run's `tune:` block (`where` = its config key). `knob_type(flat key)` is the knob's Python type
    (KeyError: no such knob), `validate(flat point, where)` validates values like knobs (ConfigError), `fixed_keys`
    are keys that may not be tuned (they choose the starting model), `seeds` the configured seeds."""
    if not isinstance(tune, dict):
        raise ConfigError(f"{where}: expected a mapping (search, space, trials, seed, seeds, objective)")
    unknown = set(tune) - set(TUNE_KEYS)
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key; known: {', '.join(TUNE_KEYS)}")
    space = tune.get("space")
    if space is None:
        if not sweep_points:
            raise ConfigError(f"{where}.space: give the knob space to search (or a sweep/sweep_list on the run, "
                              f"which is then the space)")
        space = list(sweep_points)
        space_where = f"{where.rsplit('.', 1)[0]}.sweep"
    else:
        space_where = f"{where}.space"
    points, axes = None, None
    if isinstance(space, list):
        if not space:
            raise ConfigError(f"{space_where}: the space is empty")
        points = []
        for i, p in enumerate(space):
            if not isinstance(p, dict) or not p:
                raise ConfigError(f"{space_where}[{i}]: expected a non-empty mapping {{knob: value}}, got {p!r}")
            points.append(flatten(p, f"{space_where}[{i}]") if "setting_knobs" in p else dict(p))
        _check_points(space_where, points)
    elif isinstance(space, dict) and space:
        axes = flatten(space, space_where)
    else:
        raise ConfigError(f"{space_where}: expected {{knob: [values] | {{low, high, log}}}} or a list of points, "
                          f"got {space!r}")
    keys = set(axes) if axes is not None else {k for p in points for k in p}
    for key in key_order(keys):
        try:
            knob_type(key)
        except KeyError:
            raise ConfigError(f"{space_where}.{key}: not a knob of this run") from None
        if key in fixed_keys:
            raise ConfigError(f"{space_where}.{key}: chooses the run's starting model, so it cannot be tuned; "
                              f"sweep it (sweep: {{...}}) or fix it")
    is_grid = points is not None or all(isinstance(v, list) for v in axes.values())
    search = tune.get("search", "grid" if is_grid else "tpe")
    if search not in SEARCHES:
        raise ConfigError(f"{where}.search: expected one of {', '.join(SEARCHES)}, got {search!r}")
    dimensions = ()
    if search == "grid":
        if not is_grid:
            bad = next(k for k, v in axes.items() if not isinstance(v, list))
            raise ConfigError(f"{space_where}.{bad}: search: grid needs a list of values, not a range; "
                              f"give a list, or use search: tpe")
        if points is None:
            for key, values in axes.items():
                _check_values(space_where, key, values)
            points = grid(axes)
        for key in ("trials", "startup_trials"):
            if key in tune:
                raise ConfigError(f"{where}.{key}: applies to search: tpe only (grid tries every point)")
        for p in points:
            validate(p, space_where)
    else:
        if points is not None:
            raise ConfigError(f"{space_where}: search: tpe needs {{knob: [values] | {{low, high, log}}}}, not a "
                              f"list of points")
        dims = []
        for key in key_order(axes):
            value = axes[key]
            if isinstance(value, list):
                _check_values(space_where, key, value)
                for v in value:
                    validate({key: v}, space_where)
                dims.append(Dimension(key, "choice", choices=tuple(value)))
            elif isinstance(value, dict):
                dim = _range(space_where, key, value, knob_type(key))
                validate({key: dim.low}, space_where)
                validate({key: dim.high}, space_where)
                dims.append(dim)
            else:
                raise ConfigError(f"{space_where}.{key}: expected a list of values or {{low, high, log}}, "
                                  f"got {value!r}")
        dimensions = tuple(dims)
    trials = tune.get("trials", 20 if search == "tpe" else len(points))
    startup = tune.get("startup_trials", min(10, trials))
    for key, value, low in (("trials", trials, 1), ("startup_trials", startup, 0), ("seed", tune.get("seed", 0), 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{where}.{key}: expected an integer >= {low}, got {value!r}")
    tune_seeds = tune.get("seeds", seeds[:1])
    if (not isinstance(tune_seeds, list) or not tune_seeds
            or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in tune_seeds)
            or len(set(tune_seeds)) != len(tune_seeds)):
        raise ConfigError(f"{where}.seeds: expected a non-empty list of distinct seeds (integers >= 0), "
                          f"got {tune_seeds!r}")
    objective = tune.get("objective", DEFAULT_OBJECTIVE)
    if not isinstance(objective, dict) or not objective:
        raise ConfigError(f"{where}.objective: expected {{term: weight}} with terms from {', '.join(TERMS)}")
    for term, weight in objective.items():
        if term not in TERMS:
            raise ConfigError(f"{where}.objective.{term}: unknown term; known: {', '.join(TERMS)}")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"{where}.objective.{term}: a weight is a finite number >= 0, got {weight!r}")
    if not any(w > 0 for w in objective.values()):
        raise ConfigError(f"{where}.objective: at least one term needs a weight > 0")
    return TuneSpec(search=search, points=tuple(points or ()), dimensions=dimensions, trials=int(trials),
                    startup_trials=int(startup), seed=int(tune.get("seed", 0)), seeds=tuple(tune_seeds),
                    objective={k: float(v) for k, v in objective.items()})
