"""Forget scenarios, one module each, registered by type (see base.py for the interface), and the forget request
rule's entry point."""
from __future__ import annotations

import numpy as np

from ..knobs import as_dict
from ..registry import discover
from .base import REGISTRY, Built, ForgetRequest, Scenario, make_options, register, scenario_type

MODULES = discover(__name__)


def make_request(name: str, data, options: dict, data_seed: int, reference: dict | None = None) -> ForgetRequest:
    """Build the forget request of configured scenario `name` (options: its config entry, `type` included). The same
    request serves every seed (see docs/methods.md). A scenario that `needs_reference` gets `reference`: the
    reference model's logits on the train and test splits (scenarios/_reference.py computes them)."""
    cls, opts = make_options(name, options, f"scenarios.{name}")
    rng = np.random.default_rng([data_seed, 0xF0, sum(map(ord, name))])
    if cls.needs_reference:
        if reference is None:
            raise ValueError(f"scenarios.{name}: a {cls.name} request is built from a trained reference model's "
                             f"outputs; none was given")
        built = cls().build(data, opts, rng, reference)
    else:
        built = cls().build(data, opts, rng)
    forget_idx = np.sort(np.asarray(built.forget_idx))
    y = data.labels("train")
    n = len(y)
    if built.retain_idx is None:
        retain_idx = np.setdiff1d(np.arange(n), forget_idx)
    else:
        retain_idx = np.sort(np.asarray(built.retain_idx))
        if len(np.intersect1d(retain_idx, forget_idx)):
            raise ValueError(f"scenarios.{name}: the retain and forget sets overlap")
    description = {
        "scenario": name,
        "type": cls.name,
        "options": as_dict(opts),
        "data_seed": data_seed,
        "n_train": n,
        "n_forget": int(len(forget_idx)),
        "n_retain": int(len(retain_idx)),
        "forget_class_counts": np.bincount(y[forget_idx], minlength=data.n_classes).tolist(),
        "definition": built.definition,
        "data_sha256": data.manifest.get("sha256", {}).get("y_train"),
        **(built.extra or {}),
    }
    test_retain_idx = None
    if built.test_forget_idx is not None:
        test_retain_idx = np.setdiff1d(np.arange(len(data.labels("test"))), built.test_forget_idx)
        description["n_test_forget"] = int(len(built.test_forget_idx))
        description["n_test_retain"] = int(len(test_retain_idx))
    return ForgetRequest(name, forget_idx, retain_idx, built.oracle_colours, description, built.test_forget_idx,
                         test_retain_idx)


def prepare_request(*, experiment: str, request: str, definition: str, scenario: str, options: dict,
                    data_seed: int) -> None:
    """Rule forget_request: the request of scenario `scenario` on one experiment (indices to `request`, its
    description to `definition`)."""
    from ..experiment import ExperimentData

    make_request(scenario, ExperimentData.load(experiment), options, data_seed).save(request, definition)


__all__ = ["MODULES", "REGISTRY", "Built", "ForgetRequest", "Scenario", "make_options", "make_request",
           "prepare_request", "register", "scenario_type"]
