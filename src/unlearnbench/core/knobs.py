"""Hyper-parameters ("knobs") as dataclasses with declared bounds, validated from config values.

Every method, wrapper (setting) and scenario declares its knobs as a dataclass whose fields are made with
`knob(...)`; `make_knobs` builds one from config values and names the config key of the first problem. Torch-free:
the Snakefile process validates every run at start without importing torch.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import field

from .errors import ConfigError


def knob(default, *, low=None, high=None, low_open=False, choices=None, help=""):
    """A hyper-parameter with bounds that validation checks (low_open: the lower bound is excluded; choices: the
    allowed values of a string knob)."""
    return field(default=default, metadata={"low": low, "high": high, "low_open": low_open,
                                            "choices": tuple(choices) if choices else None, "help": help})


def knob_fields(knobs_cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(knobs_cls)}


def make_knobs(knobs_cls, values: dict | None, where: str, what: str):
    """Build a knobs dataclass from config values, checking names, types, finiteness, bounds and choices.

    `where` is the config path of the knobs (messages name `where.<knob>`), `what` names their owner."""
    fields = knob_fields(knobs_cls)
    values = dict(values or {})
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown knob for {what}; "
                          f"known knobs: {', '.join(sorted(fields)) or 'none'}")
    for key, value in list(values.items()):
        f = fields[key]
        expected = type(f.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = values[key] = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{where}.{key}: expected {expected.__name__}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}.{key}: must be a finite number, got {value!r}")
        low, high = f.metadata.get("low"), f.metadata.get("high")
        if low is not None and (value < low or (f.metadata.get("low_open") and value == low)):
            bound = ">" if f.metadata.get("low_open") else ">="
            raise ConfigError(f"{where}.{key}: must be {bound} {low}, got {value!r}")
        if high is not None and value > high:
            raise ConfigError(f"{where}.{key}: must be <= {high}, got {value!r}")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{where}.{key}: expected one of {', '.join(map(str, choices))}, got {value!r}")
    return knobs_cls(**values)


def as_dict(knobs) -> dict:
    return dataclasses.asdict(knobs)
