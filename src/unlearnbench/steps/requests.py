"""Rule forget_request_from_model: the request of a scenario that `needs_reference` (worst_case), built from a trained
reference model's outputs (its logits on the train and test splits).

A job entry point, not part of the scenarios package (numpy-only, below the torch layers): it loads a trained model
(steps.training.load_model) and computes its logits, then builds the request with scenarios.make_request. Its own
module so that only these requests rerun when the training code changes, not every request.
"""
from __future__ import annotations


def reference_logits(model_path: str, data, device: str, threads: int) -> dict:
    """{"train": logits, "test": logits, "identity": {...}} of the checkpoint `model_path` on `data`."""
    from ..nn import checkpoint, engine
    from .training import load_model

    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    net, meta = load_model(model_path, data, dev)
    out = {}
    for split in ("train", "test"):
        x = engine.to_device(data.images(split), None, dev)
        out[split] = engine.predict_logits(net, x).numpy().astype("float64")
    out["identity"] = {"seed": meta.get("seed"), "sha256": checkpoint.file_sha256(model_path)}
    return out


def prepare_request_from_model(*, experiment: str, reference: str, request: str, definition: str, scenario: str,
                               options: dict, data_seed: int, device: str, threads: int,
                               log: str | None = None) -> None:
    """Rule forget_request_from_model: the request of `scenario` on one experiment, from the reference model
    `reference` (the baseline of the scenario's `reference_seed`)."""
    from ..datasets.experiment import ExperimentData
    from ..core.logs import get_logger
    from ..scenarios import make_request

    data = ExperimentData.load(experiment)
    logits = reference_logits(reference, data, device, threads)
    req = make_request(scenario, data, options, data_seed, reference=logits)
    get_logger(log).info(f"{scenario}: {req.description['definition']} (reference {reference}, "
                         f"sha256 {logits['identity']['sha256'][:16]})")
    req.save(request, definition)
