"""Forget scenarios, one module each, registered by type (see base.py for the interface), and the forget request
rule's entry point."""
from __future__ import annotations

import numpy as np

from ..core.knobs import as_dict
from ..evaluation.metrics import MIN_EVAL_IMAGES
from ..core.registry import discover
from .base import REGISTRY, Built, ForgetRequest, Scenario, make_options, register, scenario_type

MODULES = discover(__name__)


def make_request(name: str, data, options: dict, data_seed: int, reference: dict | None = None) -> ForgetRequest:
    """Build the forget request of configured scenario `name` (options: its config entry, `type` included). The same
    request serves every seed (see docs/methods.md). A scenario that `needs_reference` gets `reference`: the
    reference model's logits on the train and test splits (steps/requests.py computes them)."""
    cls, opts = make_options(name, options, f"scenarios.{name}")
    rng = np.random.default_rng([data_seed, 0xF0, sum(map(ord, name))])
    if cls.needs_reference:
        if reference is None:
            raise ValueError(f"scenarios.{name}: a {cls.name} request is built from a trained reference model's "
                             f"outputs; none was given")
        built = cls().build(data, opts, rng, reference)
    else:
        built = cls().build(data, opts, rng)
    return _request(name, cls, opts, built, data, data_seed)


def make_tuning_request(name: str, data, options: dict, overrides: dict, data_seed: int,
                        evaluated: ForgetRequest) -> ForgetRequest:
    """The tuning request of scenario `name` (docs/tuning.md): built by its type's `build_tuning` with the scenario's
    options updated by `overrides` (`scenarios.<name>.tune_request`), from its own random stream, disjoint from the
    `evaluated` request's forget set, and without test indices (`data` may hold no test split)."""
    cls, _ = make_options(name, options, f"scenarios.{name}")
    _, opts = make_options(name, {**options, **overrides}, f"scenarios.{name}.tune_request")
    rng = np.random.default_rng([data_seed, 0xF0, sum(map(ord, name)), 0x7E57])
    built = cls().build_tuning(data, opts, rng, np.asarray(evaluated.forget_idx))
    if built.test_forget_idx is not None:
        raise ValueError(f"scenario type {cls.name!r}: a tuning request carries no test indices")
    overlap = np.intersect1d(built.forget_idx, evaluated.forget_idx)
    if len(overlap):
        raise ValueError(f"scenarios.{name}: the tuning request shares {len(overlap)} forget points with the evaluated "
                         f"request; it must be distinct (docs/tuning.md)")
    request = _request(name, cls, opts, built, data, data_seed)
    request.description.update({"tuning": True, "evaluated_n_forget": int(len(evaluated.forget_idx)),
                                "overrides": dict(overrides)})
    return request


def _request(name: str, cls, opts, built: Built, data, data_seed: int) -> ForgetRequest:
    references = cls().references(opts)
    unknown = set(built.oracle_colours) - set(references)
    if unknown:
        raise RuntimeError(f"scenario type {cls.name!r} built colours for {sorted(unknown)}, which its references() "
                           f"does not declare ({', '.join(references)})")
    order = np.argsort(np.asarray(built.forget_idx), kind="stable")
    forget_idx = np.asarray(built.forget_idx)[order]
    counterfactual = None if built.counterfactual_colours is None else np.asarray(built.counterfactual_colours)[order]
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
    from ..datasets.experiment import ExperimentData

    data = ExperimentData.load(experiment)
    req = make_request(scenario, data, options, data_seed)
    # config.parse checked this before any job from the planned sizes; exactly here (sub_class under a train_size
    # subset and bias below full strength are drawn with the data), so the run fails now, not in the aggregation
    need = MIN_EVAL_IMAGES
    if len(req.forget_idx) < need or len(data.labels("test")) < need:
        raise ValueError(f"scenarios.{scenario}: this request forgets {len(req.forget_idx)} training images and the "
                         f"test split has {len(data.labels('test'))}; the membership-inference attack mia_loss_cv "
                         f"({need}-fold cross-validation, unlearnbench.evaluation.metrics) needs at least {need} of "
                         f"each: forget more (scenarios.{scenario}) or use more data (the dataset's split.train_size / test_size)")
    req.save(request, definition)


def prepare_tuning_request(*, experiment: str, evaluated: str, request: str, definition: str, scenario: str,
                           options: dict, overrides: dict, data_seed: int) -> None:
    """Rule tuning_request: the tuning request of `scenario` (docs/tuning.md), from the experiment's training split
    (its test split is not loaded) and the evaluated request `evaluated` (only to stay disjoint from it)."""
    from ..datasets.experiment import ExperimentData

    data = ExperimentData.load(experiment, test=False)
    make_tuning_request(scenario, data, options, overrides, data_seed, ForgetRequest.load(evaluated)).save(
        request, definition)


__all__ = ["MODULES", "REGISTRY", "Built", "ForgetRequest", "Scenario", "make_options", "make_request",
           "make_tuning_request", "prepare_request", "prepare_tuning_request", "register", "scenario_type"]
