"""The interface of a forget scenario and the forget request it builds.

A scenario is a class with
  name:     its type, used as `scenarios.<name>.type` in config (default: the config key)
  label:    its heading in tables
  Options:  a knobs dataclass of its options, validated like method knobs (unlearnbench.knobs)
  check(options, dataset, dataset_cfg, where): config-time checks against a dataset entry (torch- and data-free)
  build(data, options, rng): the ForgetRequest for an experiment (numpy only)
  evaluation: which test sets JiT's tables read for this scenario: "class" (D_r = test images of the retained
            classes, D_f = test images of the forgotten (sub-)class), "sample" (D_r = the whole test set, D_f =
            the forget set's training images), None (not a JiT scenario); `evaluation_of(options)` when it
            depends on the options
  needs_reference: the request depends on a trained model (the reference baseline, `reference_seed` option):
            build(data, options, rng, reference) then also gets that model's logits on the train and test splits
            ({"train": (n_train, C), "test": (n_test, C)} numpy arrays) and the checkpoint's identity
Scenarios register themselves by module (unlearnbench.registry.discover): adding one is one new module.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigError
from ..io import read_bundle, write_bundle


@dataclass
class ForgetRequest:
    """What to forget and what the retrain oracle trains on, as indices into the train split.

    forget_idx:     ΔD, the training points whose information is to be removed
    retain_idx:     the other training points
    oracle_colours: (colour scenarios) colours of every training image in the oracle's training set;
                    the forget points' counterfactuals z̃ are the forget images in these colours.
    test_forget_idx / test_retain_idx: (class scenarios) indices into the test split of the forgotten
                    (sub-)class and of every other test image: the forget-class and retain-class evaluation sets;
                    None for the other scenarios.
    description:    the request's definition (scenario name and type, options, sizes, ...), written as JSON.
    """

    scenario: str
    forget_idx: np.ndarray
    retain_idx: np.ndarray
    oracle_colours: np.ndarray | None
    description: dict
    test_forget_idx: np.ndarray | None = None
    test_retain_idx: np.ndarray | None = None

    OPTIONAL = ("oracle_colours", "test_forget_idx", "test_retain_idx")

    @classmethod
    def load(cls, npz_path: str | os.PathLike) -> "ForgetRequest":
        arrays, description = read_bundle(npz_path, what="forget request")
        return cls(description["scenario"], arrays["forget_idx"], arrays["retain_idx"],
                   arrays.get("oracle_colours"), description, arrays.get("test_forget_idx"),
                   arrays.get("test_retain_idx"))

    def save(self, npz_path: str | os.PathLike, json_path: str | os.PathLike | None = None) -> None:
        """Indices to `npz_path`, the description to `json_path` (default: the .json beside it)."""
        arrays = {"forget_idx": self.forget_idx, "retain_idx": self.retain_idx}
        arrays.update({k: getattr(self, k) for k in self.OPTIONAL if getattr(self, k) is not None})
        write_bundle(npz_path, arrays, self.description, json_path)

    @property
    def type(self) -> str:
        return self.description.get("type", self.scenario)

    def oracle_training_set(self, data) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of D \\ ΔD, the set the retrain oracle learns from."""
        if self.oracle_colours is not None:
            return data.images("train", colours=self.oracle_colours), data.labels("train")
        return data.images("train", self.retain_idx), data.labels("train")[self.retain_idx]

    def retain_set(self, data) -> tuple[np.ndarray, np.ndarray]:
        """The retain data a method may read: the oracle's training set without the forget points."""
        colours = None if self.oracle_colours is None else self.oracle_colours[self.retain_idx]
        return data.images("train", self.retain_idx, colours), data.labels("train")[self.retain_idx]

    def forget_set(self, data) -> tuple[np.ndarray, np.ndarray]:
        """ΔD as the model was trained on it (for the bias scenario: the pattern points z in their class colour)."""
        return data.images("train", self.forget_idx), data.labels("train")[self.forget_idx]

    def forget_counterfactual(self, data) -> tuple[np.ndarray, np.ndarray] | None:
        """z̃ for colour scenarios: the forget images with the pattern (colour) replaced; None otherwise."""
        if self.oracle_colours is None:
            return None
        colours = self.oracle_colours[self.forget_idx]
        return data.images("train", self.forget_idx, colours), data.labels("train")[self.forget_idx]

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

    def evaluation_of(self, options) -> str | None:
        """"class", "sample" or None: the test sets JiT's tables read for this scenario (module docstring)."""
        return self.evaluation

    def check(self, options, dataset: str, dataset_cfg: dict, where: str) -> None:
        """Config-time checks of this scenario on one dataset entry (ConfigError naming the key)."""

    def build(self, data, options, rng: np.random.Generator) -> "Built":
        raise NotImplementedError


@dataclass
class Built:
    """What a scenario's build returns: the indices and its own description items (the registry adds the rest)."""

    forget_idx: np.ndarray
    definition: str
    oracle_colours: np.ndarray | None = None
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
    from ..knobs import make_knobs

    values = dict(values or {})
    kind = values.pop("type", name)
    if kind not in REGISTRY:
        key = f"{where}.type" if name != kind else where
        raise ConfigError(f"{key}: unknown scenario type {kind!r}; registered: {', '.join(sorted(REGISTRY))} "
                          f"(a scenario's type is its `type` key, or its name)")
    return REGISTRY[kind], make_knobs(REGISTRY[kind].Options, values, where, f"scenario {kind!r}")
