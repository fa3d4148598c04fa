"""Forget scenarios, one module each, registered by type (see base.py for the interface), and the forget request
rule's entry point."""
from __future__ import annotations

import numpy as np

from ..knobs import as_dict
from ..metrics import MIN_EVAL_IMAGES
from ..registry import discover
from .base import REGISTRY, Built, ForgetRequest, Scenario, make_options, register, scenario_type

MODULES = discover(__name__)


def make_request(name: str, data, options: dict, data_seed: int) -> ForgetRequest:
    """Build the forget request of configured scenario `name` (options: its config entry, `type` included). The same
    request serves every seed (see docs/methods.md)."""
    cls, opts = make_options(name, options, f"scenarios.{name}")
    rng = np.random.default_rng([data_seed, 0xF0, sum(map(ord, name))])
    scenario = cls()
    built = scenario.build(data, opts, rng)
    references = scenario.references(opts)
    unknown = set(built.oracle_colours) - set(references)
    if unknown:
        raise RuntimeError(f"scenario type {cls.name!r} built colours for {sorted(unknown)}, which its references() "
                           f"does not declare ({', '.join(references)})")
    order = np.argsort(np.asarray(built.forget_idx), kind="stable")
    forget_idx = np.asarray(built.forget_idx)[order]
    counterfactual = None if built.counterfactual_colours is None else np.asarray(built.counterfactual_colours)[order]
    y = data.labels("train")
    n = len(y)
    retain_idx = np.setdiff1d(np.arange(n), forget_idx)
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
        "references": references,
        "data_sha256": data.manifest.get("sha256", {}).get("y_train"),
        **(built.extra or {}),
    }
    test_retain_idx = None
    if built.test_forget_idx is not None:
        test_retain_idx = np.setdiff1d(np.arange(len(data.labels("test"))), built.test_forget_idx)
        description["n_test_forget"] = int(len(built.test_forget_idx))
        description["n_test_retain"] = int(len(test_retain_idx))
    return ForgetRequest(name, forget_idx, retain_idx, description, counterfactual,
                         dict(built.oracle_colours), built.test_forget_idx, test_retain_idx)


def prepare_request(*, experiment: str, request: str, definition: str, scenario: str, options: dict,
                    data_seed: int) -> None:
    """Rule forget_request: the request of scenario `scenario` on one experiment (indices to `request`, its
    description to `definition`)."""
    from ..experiment import ExperimentData

    data = ExperimentData.load(experiment)
    req = make_request(scenario, data, options, data_seed)
    # config.parse checked this before any job from the planned sizes; exactly here (sub_class under a train_size
    # subset and bias below full strength are drawn with the data), so the run fails now, not in the aggregation
    need = MIN_EVAL_IMAGES
    if len(req.forget_idx) < need or len(data.labels("test")) < need:
        raise ValueError(f"scenarios.{scenario}: this request forgets {len(req.forget_idx)} training images and the "
                         f"test split has {len(data.labels('test'))}; the membership-inference attack mia_loss_cv "
                         f"({need}-fold cross-validation, unlearnbench.metrics) needs at least {need} of each: forget "
                         f"more (scenarios.{scenario}) or use more data (the dataset's split.train_size / test_size)")
    req.save(request, definition)


__all__ = ["MODULES", "REGISTRY", "Built", "ForgetRequest", "Scenario", "make_options", "make_request",
           "prepare_request", "register", "scenario_type"]
