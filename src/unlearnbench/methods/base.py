"""The one interface every unlearning method implements, and the registry that finds it by name.

A method is a class with
  name:   the registry key used in config (`methods.<run>.method`)
  reads:  the data it may see: a subset of {"forget", "retain", "forget_counterfactual"};
          the runner hands it only those (UnlearnData fields it did not declare are None)
  Knobs:  a dataclass of its hyper-parameters with defaults; `field(metadata=...)` bounds are checked
  unlearn(model, data, ctx): modifies `model` in place.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch
from torch import nn

DATA_KINDS = frozenset({"forget", "retain", "forget_counterfactual"})


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the config key and the fix."""


def knob(default, *, low=None, high=None, low_open=False, help=""):
    """A hyper-parameter with bounds that validation checks (low_open: the lower bound is excluded)."""
    return field(default=default, metadata={"low": low, "high": high, "low_open": low_open, "help": help})


@dataclass
class SGDKnobs:
    """The knobs of every method that fine-tunes with engine.train (FT, RL, ℓ1-sparse): Unlearn-Sparse's
    recipe, SGD with a constant learning rate."""

    epochs: int = knob(10, low=1)
    lr: float = knob(0.01, low=0.0, low_open=True)
    batch_size: int = knob(64, low=1)
    momentum: float = knob(0.9, low=0.0, high=1.0)
    weight_decay: float = knob(5e-4, low=0.0)

    def train_config(self):
        from ..engine import TrainConfig

        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
                           weight_decay=self.weight_decay, schedule="constant")


@dataclass
class UnlearnData:
    """Tensors on the device (uint8 NCHW images, int64 labels). Undeclared fields stay None."""

    forget: tuple[torch.Tensor, torch.Tensor] | None = None
    retain: tuple[torch.Tensor, torch.Tensor] | None = None
    forget_counterfactual: tuple[torch.Tensor, torch.Tensor] | None = None
    n_train: int = 0
    n_classes: int = 0


class UnlearnContext:
    """What a method gets besides data: device, seeded generator, logger, and the iteration hook.

    `iteration(model)` is called by a method after each of its unlearning iterations; the runner uses it
    to record per-iteration metrics (UIB Fig. 5), and the time spent in it is excluded from the method's
    unlearning time.
    """

    def __init__(self, device: torch.device, generator: torch.Generator, log: Callable[[str], None] = print,
                 on_iteration: Callable[[int, nn.Module], None] | None = None):
        self.device = device
        self.generator = generator
        self.log = log
        self._on_iteration = on_iteration
        self.excluded_seconds = 0.0
        self.iterations = 0

    def iteration(self, model: nn.Module) -> None:
        self.iterations += 1
        if self._on_iteration is None:
            return
        t0 = time.perf_counter()
        was_training = model.training
        self._on_iteration(self.iterations, model)
        model.train(was_training)
        self.excluded_seconds += time.perf_counter() - t0


class UnlearningMethod:
    name: ClassVar[str]
    reads: ClassVar[frozenset[str]]
    Knobs: ClassVar[type]

    def __init__(self, knobs=None):
        self.knobs = knobs if knobs is not None else self.Knobs()

    def unlearn(self, model: nn.Module, data: UnlearnData, ctx: UnlearnContext) -> None:
        raise NotImplementedError


REGISTRY: dict[str, type[UnlearningMethod]] = {}


def register(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
    if not cls.reads <= DATA_KINDS:
        raise TypeError(f"{cls.__name__}.reads has unknown kinds {set(cls.reads - DATA_KINDS)}")
    if cls.name in REGISTRY:
        raise TypeError(f"method name {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def make_knobs(method: str, values: dict, where: str):
    """Build and validate a method's Knobs from config values; `where` is the config path for messages."""
    if method not in REGISTRY:
        raise ConfigError(f"{where}.method: unknown method {method!r}; registered: {', '.join(sorted(REGISTRY))}")
    return make_knobs_for(REGISTRY[method].Knobs, values, where, f"method {method!r}")


def make_knobs_for(knobs_cls, values: dict, where: str, what: str):
    """Build a knobs dataclass from config values, checking names, types and `knob(...)` bounds."""
    fields = {f.name: f for f in dataclasses.fields(knobs_cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown knob for {what}; "
                          f"known knobs: {', '.join(sorted(fields)) or 'none'}")
    values = dict(values)
    for key, value in list(values.items()):
        f = fields[key]
        expected = type(f.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = values[key] = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{where}.{key}: expected {expected.__name__}, got {value!r}")
        low, high = f.metadata.get("low"), f.metadata.get("high")
        if low is not None and (value < low or (f.metadata.get("low_open") and value == low)):
            bound = ">" if f.metadata.get("low_open") else ">="
            raise ConfigError(f"{where}.{key}: must be {bound} {low}, got {value!r}")
        if high is not None and value > high:
            raise ConfigError(f"{where}.{key}: must be <= {high}, got {value!r}")
    return knobs_cls(**values)


def build_method(method: str, values: dict, where: str = "methods") -> UnlearningMethod:
    return REGISTRY[method](make_knobs(method, values, where))
