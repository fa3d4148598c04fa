"""Rule forget_request_from_model: the request of a scenario that `needs_reference` (worst_case), built from a trained
reference model's outputs (its logits on the train and test splits).

Kept apart from scenarios/__init__.py (and skipped by the registry's discovery: the leading underscore) because it
imports the training code: only these requests rerun when that code changes, not every request.
"""
from __future__ import annotations


def reference_logits(model_path: str, data, device: str, threads: int) -> dict:
    """{"train": logits, "test": logits, "identity": {...}} of the checkpoint `model_path` on `data`."""
    from .. import checkpoint, engine
    from ..training import load_model

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
    from ..experiment import ExperimentData
    from ..logs import get_logger
    from . import make_request

    data = ExperimentData.load(experiment)
    logits = reference_logits(reference, data, device, threads)
    req = make_request(scenario, data, options, data_seed, reference=logits)
    get_logger(log).info(f"{scenario}: {req.description['definition']} (reference {reference}, "
                         f"sha256 {logits['identity']['sha256'][:16]})")
    req.save(request, definition)
