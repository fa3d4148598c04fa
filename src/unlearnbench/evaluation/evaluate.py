"""Evaluation: a model's per-sample outputs on a forget request, and every per-run metric computed from them.

The unlearning job saves the outputs (logits on forget, retain, test, and the bias counterfactuals); the
aggregation computes the metrics from them in one process. So a metric can be added or corrected without
running any model again, and the per-run jobs never import scikit-learn (process start-up dominates at
laptop scale).
"""
from __future__ import annotations

import numpy as np

from . import metrics


def model_outputs(model, data, request, device) -> dict[str, np.ndarray]:
    """Logits and labels on the sets every metric reads (data: ExperimentData, request: ForgetRequest)."""
    from ..nn import engine

    sets = {
        "test": (data.images("test"), data.labels("test")),
        "forget": request.forget_set(data),
        "retain": request.retain_set(data),
    }
    counterfactual = request.forget_counterfactual(data)
    if counterfactual is not None:
        sets["forget_cf"] = counterfactual
    if getattr(request, "test_forget_idx", None) is not None:  # class scenarios: forget-/retain-class test sets
        sets["test_forget"] = request.test_forget_set(data)
        sets["test_retain"] = request.test_retain_set(data)
    out = {}
    for name, (images, labels) in sets.items():
        x = engine.to_device(images, None, device)
        out[f"{name}_logits"] = (engine.predict_logits(model, x).numpy() if len(labels) else
                                 np.zeros((0, data.n_classes), np.float32))
        out[f"{name}_labels"] = np.asarray(labels, dtype=np.int64)
    if data.coloured:
        out["test_colours"] = data.colours("test")
    return out


def bias_metrics(test_logits: np.ndarray, test_colours: np.ndarray, n_classes: int) -> dict[str, float]:
    pred = test_logits.argmax(1)
    corr = metrics.bias_correlation(test_colours % n_classes, pred, n_classes)
    return {"bias_cramers_v": float(corr["cramers_v"]), "bias_colour_match": float(corr["colour_match_rate"])}


def compute_metrics(outputs: dict[str, np.ndarray], n_classes: int, *, seed: int) -> dict[str, float]:
    """All absolute per-run metrics (see docs/metrics in README 'Reading the results')."""
    test_logits, test_labels = outputs["test_logits"], outputs["test_labels"]
    forget_logits, forget_labels = outputs["forget_logits"], outputs["forget_labels"]
    retain_logits, retain_labels = outputs["retain_logits"], outputs["retain_labels"]
    test_pred = test_logits.argmax(1)
    result = {
        "test_acc": metrics.accuracy(test_labels, test_pred),
        "test_f1": metrics.macro_f1(test_labels, test_pred, n_classes),
        "retain_acc": metrics.accuracy(retain_labels, retain_logits.argmax(1)),
        "forget_acc": metrics.accuracy(forget_labels, forget_logits.argmax(1)),
        "mia_efficacy_svc": metrics.mia_efficacy_svc(retain_logits, retain_labels, test_logits, test_labels,
                                                     forget_logits, forget_labels, seed=seed),
        # 1 when the SVC attack's verdict on D_f is a tie-break (it flips with the shadow draw): efficacy NaN
        "mia_efficacy_svc_undefined": float(metrics.mia_svc_undefined(retain_logits, retain_labels, test_logits,
                                                                      test_labels, forget_logits, forget_labels,
                                                                      seed=seed)),
        "mia_lr_entropy": metrics.mia_lr_entropy(retain_logits, test_logits, forget_logits, seed=seed),
        "mia_loss_cv": metrics.mia_loss_cv(metrics.per_sample_loss(forget_logits, forget_labels),
                                           metrics.per_sample_loss(test_logits, test_labels), seed=seed),
        "forget_entropy": float(np.mean(metrics.entropy_of_outputs(forget_logits))),
    }
    if "forget_cf_logits" in outputs:
        result["forget_cf_acc"] = metrics.accuracy(outputs["forget_cf_labels"], outputs["forget_cf_logits"].argmax(1))
    for part in ("forget", "retain"):  # class scenarios: accuracy on the forget-class / retain-class test images
        if f"test_{part}_logits" in outputs and len(outputs[f"test_{part}_labels"]):
            result[f"{part}_class_test_acc"] = metrics.accuracy(outputs[f"test_{part}_labels"],
                                                                outputs[f"test_{part}_logits"].argmax(1))
    if "test_colours" in outputs:
        result.update(bias_metrics(test_logits, outputs["test_colours"], n_classes))
    if result["mia_efficacy_svc_undefined"]:
        result["mia_efficacy_svc"] = float("nan")  # dropped from the long table: summaries count defined seeds
    return {k: float(v) for k, v in result.items()}


def iteration_probe(data, request, device):
    """A callback that records test accuracy, forget accuracy and bias correlation after an iteration."""
    from ..nn import engine

    x_test = engine.to_device(data.images("test"), None, device)
    x_forget = engine.to_device(request.forget_set(data)[0], None, device)
    y_test, y_forget = data.labels("test"), request.forget_set(data)[1]
    trace: list[dict] = []

    def probe(iteration: int, model) -> None:
        test_logits = engine.predict_logits(model, x_test).numpy()
        row = {
            "iteration": iteration,
            "test_acc": metrics.accuracy(y_test, test_logits.argmax(1)),
            "forget_acc": metrics.accuracy(y_forget, engine.predict_logits(model, x_forget).numpy().argmax(1)),
        }
        if data.coloured:
            row.update(bias_metrics(test_logits, data.colours("test"), data.n_classes))
        trace.append({k: float(v) if k != "iteration" else v for k, v in row.items()})

    return probe, trace


def save_run(model, data, request, device, run: str, outputs: str, identity: dict, info: dict,
             trace: list[dict]) -> dict:
    """Write a model's per-sample outputs (`outputs`, .npz) and the run record (`run`, .json: who the run is, its
    timing and per-iteration trace); metrics are computed from them downstream, in aggregation."""
    from ..core.io import write_bundle

    values = model_outputs(model, data, request, device)
    if not all(np.isfinite(v).all() for k, v in values.items() if k.endswith("_logits")):
        raise FloatingPointError(
            "the model's outputs are not finite after unlearning (the method diverged); lower its learning rate "
            "or, for influence, raise `scale` / `damping` (see docs/methods.md)")
    info = {**info, "ut_minutes": info["ut_seconds"] / 60.0, "n_classes": data.n_classes}
    write_bundle(outputs, values, {"identity": identity, "info": info, "trace": trace}, json_path=run)
    return info


def parameters_changed(before: dict, model) -> float:
    """L2 distance between a state dict and a model's parameters (0 means the method did nothing)."""
    total = 0.0
    for name, p in model.state_dict().items():
        if p.is_floating_point():
            total += float(((p.detach().cpu() - before[name].cpu()) ** 2).sum())
    return total ** 0.5
