"""The one interface every unlearning method implements, wrappers (meta-methods) around it, and their registry.

A method is a class with
  name:      the registry key used in config (`methods.<run>.method`)
  reads:     the data it may see, a subset of DATA_KINDS; the runner hands it only those, and reading another
             kind raises UndeclaredReadError (so "zero-shot" = reads only the forget set is enforced, not assumed)
  Knobs:     a dataclass of its hyper-parameters (`knob(...)` fields with bounds), validated from config
  scenarios: the scenario types it is defined for (None: every scenario); a run asking for another is a
             config error
  unlearn(model, data, ctx): modifies `model` in place.

A wrapper (scikit-learn's meta-estimator shape) is a method around another method: the settings of UIB Table 1
(`Sparsity`, `UIB`) are wrappers. It declares `supports` (the inner method names it is defined for, None: any),
its own reads (`own_reads`; the wrapper sees inner.reads | own_reads, the inner method still only its own), its
Knobs, and the model it starts from (`start`, e.g. the sparse baseline, with `start_params(knobs)`), which the
workflow rules read instead of special-casing a setting.

Torch-free at import (the Snakefile validates every run without importing torch); see unlearnbench.core.lazy.
"""
from __future__ import annotations

import copy

import time
from dataclasses import dataclass
from typing import Callable, ClassVar

from ..core.errors import ConfigError
from ..core.knobs import knob, make_knobs as _make_knobs
from ..core.lazy import lazy_import

torch = lazy_import("torch")
engine = lazy_import("unlearnbench.nn.engine")

# retain_attribute: the protected feature Z of every retain image (the colour index in colour scenarios, as the retain
# images are rendered), for feature-unlearning methods; an int64 tensor, not an (images, labels) pair
DATA_KINDS = frozenset({"forget", "retain", "forget_counterfactual", "retain_attribute"})


@dataclass
class SGDOptimKnobs:
    """SGD's momentum, Nesterov and coupled weight decay at the references' values (plain momentum 0.9, decay 5e-4):
    the optimiser knobs every SGD-trained method shares (`sgd(params, lr)` builds its optimiser)."""

    momentum: float = knob(0.9, low=0.0, high=1.0)
    nesterov: bool = knob(False, help="Nesterov momentum (the references use plain momentum)")
    weight_decay: float = knob(5e-4, low=0.0, help="coupled L2 weight decay")

    def sgd(self, params, lr: float):
        return engine.SGD(params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay,
                          nesterov=self.nesterov)


@dataclass
class SGDKnobs(SGDOptimKnobs):
    """The knobs of every method that fine-tunes with engine.train (FT, RL, ℓ1-sparse): Unlearn-Sparse's recipe
    (arg_parser defaults and README runs, unlearn/impl.py): SGD with plain momentum 0.9, coupled weight decay 5e-4,
    a constant learning rate, batch 256, shuffled, the last short batch kept (their DataLoader)."""

    epochs: int = knob(10, low=1)
    lr: float = knob(0.01, low=0.0, low_open=True)
    batch_size: int = knob(256, low=1)

    def train_config(self):
        return engine.TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
                                  nesterov=self.nesterov, weight_decay=self.weight_decay, schedule="constant",
                                  drop_last=False)


def frozen_copy(model, *, train: bool = False):
    """A copy of `model` that never trains: every parameter's requires_grad off, in eval mode (or train mode, for a
    teacher whose batch-norm runs on batch statistics). The frozen teacher of SCRUB, Bad Teacher, BDSH and GKT."""
    copy_ = copy.deepcopy(model).train(train)
    return freeze(copy_)


def freeze(model):
    """`model` with every parameter's requires_grad off (returned for chaining)."""
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def optimizer_step(optimizer, loss, *, clip_norm: float = 0.0, inputs=None) -> None:
    """zero_grad; backward (only into `inputs` when given); clip the gradient norm of the optimiser's parameters to
    `clip_norm` when it is positive; step."""
    optimizer.zero_grad()
    loss.backward(inputs=inputs)
    if clip_norm:
        torch.nn.utils.clip_grad_norm_(optimizer.params, clip_norm)
    optimizer.step()


class UndeclaredReadError(PermissionError):
    """A method read a kind of data it did not declare in `reads`."""


class UnlearnData:
    """The data handed to a method: tensors on the device (uint8 NCHW images, int64 labels) per kind.

    Reading a kind the receiver did not declare raises UndeclaredReadError; a declared kind that the scenario does
    not have (e.g. counterfactuals outside the bias scenario) reads as None."""

    def __init__(self, *, declared=DATA_KINDS, n_train: int = 0, n_classes: int = 0, owner: str = "method",
                 **sets):
        unknown = set(sets) - DATA_KINDS
        if unknown or not frozenset(declared) <= DATA_KINDS:
            raise TypeError(f"unknown data kinds {sorted(unknown | (set(declared) - DATA_KINDS))}")
        self._declared = frozenset(declared)
        self._sets = {k: v for k, v in sets.items() if k in self._declared}
        self._owner = owner
        self.n_train = n_train
        self.n_classes = n_classes

    def __getattr__(self, name):
        if name in DATA_KINDS:
            if name not in self.__dict__["_declared"]:
                raise UndeclaredReadError(f"{self.__dict__['_owner']} read {name!r} data, which it does not declare "
                                          f"in `reads` ({sorted(self.__dict__['_declared'])})")
            return self.__dict__["_sets"].get(name)
        raise AttributeError(name)

    @property
    def declared(self) -> frozenset[str]:
        return self._declared

    def restrict(self, reads, owner: str = "method") -> "UnlearnData":
        """The same data seen by a receiver that declared only `reads` (a subset of what this one declared)."""
        if not frozenset(reads) <= self._declared:
            raise UndeclaredReadError(f"{owner} declares {sorted(set(reads) - self._declared)}, which its "
                                      f"caller ({self._owner}) was not given")
        return UnlearnData(declared=reads, n_train=self.n_train, n_classes=self.n_classes, owner=owner,
                           **{k: v for k, v in self._sets.items() if k in reads})


class UnlearnContext:
    """What a method gets besides data: device, seeded generator, logger, the starting checkpoint's metadata and the
    iteration hook.

    A method calls `ctx.iteration(model)` after each of its unlearning iterations. Wrappers add work to run first
    (`before_iteration`, counted as unlearning time); then the runner's probe records per-iteration metrics
    (UIB Fig. 5), whose time is excluded from the method's unlearning time.
    """

    def __init__(self, device, generator, log: Callable[[str], None] = print,
                 on_iteration: Callable[[int, object], None] | None = None, start_meta: dict | None = None,
                 model_factory: Callable[[], object] | None = None):
        self.device = device
        self.generator = generator
        self.log = log
        self.start_meta = start_meta or {}
        self._on_iteration = on_iteration
        self._model_factory = model_factory
        self._before: list[Callable[[object], None]] = []
        self.excluded_seconds = 0.0
        self.iterations = 0

    def fresh_model(self):
        """A newly built, randomly initialised model of the starting model's architecture (same `model` config,
        same data statistics), on `device`, in train mode. Its initial weights come from torch's global RNG, which
        the runner seeds per job (so they are reproducible). For methods that need an untrained network of the
        same architecture (Bad Teacher's incompetent teacher)."""
        if self._model_factory is None:
            raise RuntimeError("this UnlearnContext has no model_factory: pass model_factory=... (the runner builds "
                               "it from the starting checkpoint's model config)")
        return self._model_factory().to(self.device).train()

    def before_iteration(self, hook: Callable[[object], None]):
        """Run `hook(model)` at every iteration, before the probe; returns a function that removes it."""
        self._before.append(hook)
        return lambda: self._before.remove(hook)

    def iteration(self, model) -> None:
        for hook in list(self._before):
            hook(model)
        self.iterations += 1
        if self._on_iteration is None:
            return
        t0 = time.perf_counter()
        was_training = model.training
        self._on_iteration(self.iterations, model)
        model.train(was_training)
        self.excluded_seconds += time.perf_counter() - t0


class UnlearningMethod:
    """The one interface of every method and wrapper: `unlearn(model, data, ctx)` changes `model` in place.

    Post-condition, enforced here for every subclass (tests/test_conformance.py checks it): when `unlearn` returns,
    no parameter holds a gradient (`.grad` is None), so the model that is saved, evaluated or handed to the next
    step carries nothing from the method's last backward pass."""

    name: ClassVar[str]
    reads: ClassVar[frozenset[str]]
    Knobs: ClassVar[type]
    scenarios: ClassVar[frozenset[str] | None] = None
    # The knobs `tuning: equal_budget` searches and their ranges, in a tune block's `space` syntax ({knob: {low, high,
    # log} | [values]}; a wrapper's under `setting_knobs`); docs/tuning.md gives each range's source. None: none
    # declared, so the method cannot run in an equal-budget table (the config parse says so before any job).
    search_space: ClassVar[dict | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "unlearn" in cls.__dict__:
            cls.unlearn = _leaves_no_gradients(cls.__dict__["unlearn"])

    def __init__(self, knobs=None):
        self.knobs = knobs if knobs is not None else self.Knobs()

    def unlearn(self, model, data: UnlearnData, ctx: UnlearnContext) -> None:
        raise NotImplementedError


def _leaves_no_gradients(unlearn):
    """`unlearn`, then every parameter's gradient dropped (set to None, as `zero_grad(set_to_none=True)` does)."""
    import functools

    @functools.wraps(unlearn)
    def wrapped(self, model, data, ctx):
        try:
            return unlearn(self, model, data, ctx)
        finally:
            for parameter in model.parameters():
                parameter.grad = None

    return wrapped


class Wrapper(UnlearningMethod):
    """A method around an inner method (see the module docstring)."""

    own_reads: ClassVar[frozenset[str]] = frozenset()
    supports: ClassVar[frozenset[str] | None] = None
    start: ClassVar[str] = "baseline"

    def __init__(self, inner: UnlearningMethod, knobs=None):
        super().__init__(knobs)
        self.inner = inner

    @property
    def reads(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset(self.inner.reads) | self.own_reads

    @property
    def scenarios(self):  # type: ignore[override]
        return self.inner.scenarios

    @classmethod
    def start_params(cls, knobs) -> dict:
        """Parameters of the starting model (e.g. the sparse baseline's sparsity); {} for the dense baseline."""
        return {}

    def run_inner(self, model, data: UnlearnData, ctx: UnlearnContext) -> None:
        """The inner method on the data it declared."""
        self.inner.unlearn(model, data.restrict(self.inner.reads, owner=f"method {self.inner.name!r}"), ctx)


def zero_shot(method) -> bool:
    """Zero-shot in JiT's sense (Foster et al. 2025, the "ZS" column): the method reads the forget set only (its
    images and their labels, which the forget request itself names), never retain or counterfactual data.
    Derived from the declared `reads` (a class or an instance; a wrapper: pass the instance), which the runner
    enforces (UndeclaredReadError)."""
    return frozenset(method.reads) <= {"forget"}


class LayerOutputs:
    """Records the outputs of a model's layers of the given types, in forward order, while active:

        with LayerOutputs(model, (nn.Conv2d,)) as acts:
            logits = model.forward_normalized(x)
        acts.outputs  # [output of the first Conv2d, ...] of that forward pass (cleared on every `clear()`)

    A forward hook per matching module (no change to the model's code), removed on exit. For methods that compare
    intermediate activations (GKT's attention transfer)."""

    def __init__(self, model, layer_types: tuple):
        self.modules = [m for m in model.modules() if isinstance(m, layer_types)]
        self.outputs: list = []
        self._handles: list = []

    def clear(self) -> list:
        out, self.outputs = self.outputs, []
        return out

    def __enter__(self):
        self._handles = [m.register_forward_hook(lambda _m, _i, out: self.outputs.append(out)) for m in self.modules]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []
        return False


REGISTRY: dict[str, type[UnlearningMethod]] = {}
WRAPPERS: dict[str, type[Wrapper]] = {}
STANDARD = "standard"  # the setting without a wrapper


def register(cls):
    """Class decorator: add a method or a wrapper to its registry (names are unique across both)."""
    if cls.name in REGISTRY or cls.name in WRAPPERS or cls.name == STANDARD:
        raise TypeError(f"method name {cls.name!r} registered twice")
    if issubclass(cls, Wrapper):
        if not cls.own_reads <= DATA_KINDS:
            raise TypeError(f"{cls.__name__}.own_reads has unknown kinds {set(cls.own_reads - DATA_KINDS)}")
        WRAPPERS[cls.name] = cls
    else:
        if not cls.reads <= DATA_KINDS:
            raise TypeError(f"{cls.__name__}.reads has unknown kinds {set(cls.reads - DATA_KINDS)}")
        REGISTRY[cls.name] = cls
    return cls


def make_knobs(method: str, values: dict, where: str):
    """Build and validate a method's Knobs from config values; `where` is the config path for messages."""
    if method not in REGISTRY:
        raise ConfigError(f"{where}.method: unknown method {method!r}; registered: {', '.join(sorted(REGISTRY))}")
    return _make_knobs(REGISTRY[method].Knobs, values, where, f"method {method!r}")


def make_setting_knobs(setting: str, values: dict | None, where: str, method: str | None = None):
    """Validate a run's `setting` (standard or a wrapper's name) and `setting_knobs` (ConfigError naming the key)."""
    values = dict(values or {})
    if setting == STANDARD:
        if values:
            raise ConfigError(f"{where}.setting_knobs.{sorted(values)[0]}: the standard setting has no knobs")
        return None
    if setting not in WRAPPERS:
        raise ConfigError(f"{where}.setting: unknown setting {setting!r}; choose one of "
                          f"{', '.join([STANDARD, *sorted(WRAPPERS)])}")
    wrapper = WRAPPERS[setting]
    if method is not None and wrapper.supports is not None and method not in wrapper.supports:
        raise ConfigError(f"{where}.setting: the {setting} setting is defined for {', '.join(sorted(wrapper.supports))}"
                          f", not for {method!r}")
    return _make_knobs(wrapper.Knobs, values, f"{where}.setting_knobs", f"setting {setting!r}")


def build_method(method: str, values: dict | None = None, where: str = "methods", setting: str = STANDARD,
                 setting_knobs: dict | None = None) -> UnlearningMethod:
    """The method (wrapped in its setting's wrapper, if any) with validated knobs."""
    knobs = make_knobs(method, dict(values or {}), where)
    s_knobs = make_setting_knobs(setting, setting_knobs, where, method)
    inner = REGISTRY[method](knobs)
    return inner if setting == STANDARD else WRAPPERS[setting](inner, s_knobs)


__all__ = ["DATA_KINDS", "LayerOutputs", "REGISTRY", "SGDKnobs", "SGDOptimKnobs", "frozen_copy", "freeze", "optimizer_step", "STANDARD", "WRAPPERS", "ConfigError", "UndeclaredReadError", "UnlearnContext",
           "UnlearnData", "UnlearningMethod", "Wrapper", "build_method", "engine", "knob", "make_knobs",
           "make_setting_knobs", "register", "torch", "zero_shot"]
