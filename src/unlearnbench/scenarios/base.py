"""The interface of a forget scenario and the forget request it builds.

A scenario is a class with
  name:     its type, used as `scenarios.<name>.type` in config (default: the config key)
  label:    its heading in tables
  Options:  a knobs dataclass of its options, validated like method knobs (unlearnbench.core.knobs)
  check(options, dataset, dataset_cfg, where): config-time checks against a dataset entry (torch- and data-free)
  plan(options, dataset, dataset_cfg, sizes, where): config-time size of ΔD from the planned split sizes
            (experiment.planned_sizes), ConfigError where `build` would fail
  references(options): the reference oracles it trains, by run name (`retrain` first; data-free)
  build(data, options, rng): the ForgetRequest for an experiment (numpy only)
  evaluation: which test sets JiT's tables read for this scenario: "class" (D_r = test images of the retained
            classes, D_f = test images of the forgotten (sub-)class), "sample" (D_r = the whole test set, D_f =
            the forget set's training images), None (not a JiT scenario); `evaluation_of(options)` when it
            depends on the options
  needs_reference: the request depends on a trained model (the reference baseline, `reference_seed` option):
            build(data, options, rng, reference) then also gets that model's logits on the train and test splits
            ({"train": (n_train, C), "test": (n_test, C)} numpy arrays) and the checkpoint's identity
Scenarios register themselves by module (unlearnbench.core.registry.discover): adding one is one new module.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..core.errors import ConfigError
from ..core.io import read_bundle, write_bundle


RETRAIN = "retrain"  # the reported oracle: every scenario has it; RIP and the "vs Retrain" tests compare with it


@dataclass
class ForgetRequest:
    """What to forget, what a method may read, and what each reference oracle trains on, as indices into the train
    split (and, for colour scenarios, colour indices).

    forget_idx:     ΔD, the training points whose information is to be removed
    retain_idx:     the other training points; a method reads them as the baseline saw them (D_r, `retain_set`)
    counterfactual_colours: (colour scenarios) one colour per forget point: the forget points' counterfactuals z̃
                    are the same images in these colours (`forget_counterfactual`, Warnecke et al.'s replacement)
    oracle_colours: (colour scenarios) reference oracle name -> colours of every training image in that oracle's
                    training set (every image is in it, re-coloured); absent names train on retain_idx as is
    test_forget_idx / test_retain_idx: (class scenarios) indices into the test split of the forgotten
                    (sub-)class and of every other test image: the forget-class and retain-class evaluation sets;
                    None for the other scenarios.
    description:    the request's definition (scenario name and type, options, sizes, reference oracles, ...),
                    written as JSON; description["references"] maps every reference oracle's run name (the
                    reported one, `retrain`, first) to what it trains on.
    """

    scenario: str
    forget_idx: np.ndarray
    retain_idx: np.ndarray
    description: dict
    counterfactual_colours: np.ndarray | None = None
    oracle_colours: dict = field(default_factory=dict)
    test_forget_idx: np.ndarray | None = None
    test_retain_idx: np.ndarray | None = None

    OPTIONAL = ("counterfactual_colours", "test_forget_idx", "test_retain_idx")
    ORACLE_PREFIX = "oracle_colours__"

    @classmethod
    def load(cls, npz_path: str | os.PathLike) -> "ForgetRequest":
        arrays, description = read_bundle(npz_path, what="forget request", required=("forget_idx", "retain_idx"))
        oracles = {k[len(cls.ORACLE_PREFIX):]: v for k, v in arrays.items() if k.startswith(cls.ORACLE_PREFIX)}
        return cls(description["scenario"], arrays["forget_idx"], arrays["retain_idx"], description,
                   arrays.get("counterfactual_colours"), oracles, arrays.get("test_forget_idx"),
                   arrays.get("test_retain_idx"))

    def save(self, npz_path: str | os.PathLike, json_path: str | os.PathLike | None = None) -> None:
        """Indices to `npz_path`, the description to `json_path` (default: the .json beside it)."""
        arrays = {"forget_idx": self.forget_idx, "retain_idx": self.retain_idx}
        arrays.update({k: getattr(self, k) for k in self.OPTIONAL if getattr(self, k) is not None})
        arrays.update({self.ORACLE_PREFIX + name: c for name, c in self.oracle_colours.items()})
        write_bundle(npz_path, arrays, self.description, json_path)

    @property
    def type(self) -> str:
        return self.description.get("type", self.scenario)

    @property
    def references(self) -> list[str]:
        """The reference oracles' run names, the reported one (`retrain`) first."""
        return list(self.description.get("references", {RETRAIN: ""}))

    def oracle_training_set(self, data, reference: str = RETRAIN) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) that reference oracle `reference` learns from: D \\ ΔD, as the scenario defines it (the
        bias scenario: every training image, in the oracle's colours)."""
        if reference not in self.references:
            raise ValueError(f"forget request {self.scenario!r} has no reference oracle {reference!r}; it has "
                             f"{', '.join(self.references)}")
        if reference in self.oracle_colours:
            return data.images("train", colours=self.oracle_colours[reference]), data.labels("train")
        return data.images("train", self.retain_idx), data.labels("train")[self.retain_idx]

    def retain_set(self, data) -> tuple[np.ndarray, np.ndarray]:
        """D_r, the retain data a method may read: the training points outside ΔD exactly as the baseline saw them
        (in the bias scenario with their training colours: no method reads data the deployed model never had)."""
        return data.images("train", self.retain_idx), data.labels("train")[self.retain_idx]

    def retain_attribute(self, data) -> np.ndarray | None:
        """(colour scenarios) the colour index of every retain image, as `retain_set` renders it: the protected
        feature Z of feature-unlearning methods that declare `retain_attribute`; None without colours."""
        if not data.coloured:
            return None
        return np.asarray(data.colours("train")[self.retain_idx], dtype=np.int64)

    def forget_set(self, data) -> tuple[np.ndarray, np.ndarray]:
        """ΔD as the model was trained on it (for the bias scenario: the pattern points z in their class colour)."""
        return data.images("train", self.forget_idx), data.labels("train")[self.forget_idx]

    def forget_counterfactual(self, data) -> tuple[np.ndarray, np.ndarray] | None:
        """z̃ for colour scenarios: the forget images with the pattern (colour) replaced by a colour drawn
        independently of the label; None otherwise."""
        if self.counterfactual_colours is None:
            return None
        return (data.images("train", self.forget_idx, self.counterfactual_colours),
                data.labels("train")[self.forget_idx])

    def test_forget_set(self, data) -> tuple[np.ndarray, np.ndarray] | None:
        """(class scenarios) test images of the forgotten (sub-)class; None for the other scenarios."""
        if self.test_forget_idx is None:
            return None
        return data.images("test", self.test_forget_idx), data.labels("test")[self.test_forget_idx]

    def test_retain_set(self, data) -> tuple[np.ndarray, np.ndarray] | None:
        """(class scenarios) every other test image: the retain-class test set; None for the other scenarios."""
        if self.test_retain_idx is None:
            return None
        return data.images("test", self.test_retain_idx), data.labels("test")[self.test_retain_idx]


class Scenario:
    name: ClassVar[str]
    label: ClassVar[str]
    Options: ClassVar[type]
    evaluation: ClassVar[str | None] = None
    needs_reference: ClassVar[bool] = False
    # a type without a tuning request of its own (no build_tuning) may reuse knobs tuned on a scenario of this type
    tunes_like: ClassVar[str | None] = None

    def evaluation_of(self, options) -> str | None:
        """"class", "sample" or None: the test sets JiT's tables read for this scenario (module docstring)."""
        return self.evaluation

    def check(self, options, dataset: str, dataset_cfg: dict, where: str) -> None:
        """Config-time checks of this scenario on one dataset entry (ConfigError naming the key)."""

    def plan(self, options, dataset: str, dataset_cfg: dict, sizes, where: str) -> int | None:
        """Config-time: the number of training images this scenario will forget on a dataset whose split sizes are
        `sizes` (experiment.PlannedSizes, per class), or None if it cannot be known before the data exist; a
        ConfigError naming the key where `build` would fail. Exact unless the scenario's docstring says otherwise."""
        return None

    def build(self, data, options, rng: np.random.Generator) -> "Built":
        raise NotImplementedError

    def references(self, options) -> dict[str, str]:
        """The reference oracles this scenario trains, by run name (the reported one, `retrain`, first), each with
        what it learns from. Declarative and data-free: the rules read it to plan one oracle job per name; `build`
        gives the colours of each name that re-colours its training set (`Built.oracle_colours`)."""
        return {RETRAIN: "a fresh model trained from scratch on D \\ ΔD (the retain points)"}

    def check_tuning(self, options, tuning_options, explicit: set, where: str) -> None:
        """Config-time checks of the tuning request's options (`scenarios.<name>.tune_request`, keys `explicit`
        given there) against the evaluated request's (ConfigError naming the key)."""

    def plan_tuning(self, tuning_options, evaluated_n: int, dataset: str, sizes, where: str) -> None:
        """Config-time check that the tuning request (`tuning_options`) can be built on `dataset` beside an
        evaluated request of `evaluated_n` training images (SizeError naming `where`); a scenario whose tuning
        request is drawn from the points outside the evaluated one overrides it."""

    def build_tuning(self, data, options, rng: np.random.Generator, evaluated_forget_idx: np.ndarray) -> "Built":
        """The tuning request (docs/tuning.md): a request of this type distinct from the evaluated one (another
        draw, disjoint from `evaluated_forget_idx`, or another class), built from the training split only (`data`
        holds no test split here: no test indices). `options` are the tuning request's options."""
        raise NotImplementedError(f"scenario type {self.name!r} defines no tuning request; the tune stage cannot "
                                  f"run on it")


@dataclass
class Built:
    """What a scenario's build returns: the indices and its own description items (the registry adds the rest)."""

    forget_idx: np.ndarray
    definition: str
    counterfactual_colours: np.ndarray | None = None
    oracle_colours: dict = field(default_factory=dict)  # reference name -> colours of every training image
    test_forget_idx: np.ndarray | None = None
    extra: dict | None = None
    retain_idx: np.ndarray | None = None  # None: every training point not forgotten


REGISTRY: dict[str, type[Scenario]] = {}


def register(cls):
    if cls.name in REGISTRY:
        raise TypeError(f"scenario {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def scenario_type(config_scenarios: dict, name: str) -> str:
    return (config_scenarios.get(name) or {}).get("type", name)


def make_options(name: str, values: dict | None, where: str):
    """(scenario class, validated options) of the configured scenario `name` (`where` = its config path)."""
    from ..core.knobs import make_knobs

    values = dict(values or {})
    kind = values.pop("type", name)
    for key in ("tune_request", "tuned_by", "seeds"):  # how the scenario is tuned and run (config.py), not options
        values.pop(key, None)
    if kind not in REGISTRY:
        key = f"{where}.type" if name != kind else where
        raise ConfigError(f"{key}: unknown scenario type {kind!r}; registered: {', '.join(sorted(REGISTRY))} "
                          f"(a scenario's type is its `type` key, or its name)")
    return REGISTRY[kind], make_knobs(REGISTRY[kind].Options, values, where, f"scenario {kind!r}")
