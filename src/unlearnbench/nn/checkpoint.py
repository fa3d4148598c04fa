"""Checkpoint formats: trained models (`model.pt`) and per-epoch training state (`model.pt.epoch`).

Loading never executes code: every file is read with `torch.load(..., weights_only=True)`, which accepts only
tensors and plain containers (dict, list, tuple, str, int, float, bool, None), so a results folder shared on a
cluster cannot run code in the reader's process. Everything the pipeline stores fits that allow-list.

An epoch checkpoint carries the fingerprint of what produced it (training recipe, model config, input data);
training resumes from it only if the fingerprint matches, otherwise it is discarded with a log line naming it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.errors import InputFileError
from ..core.io import atomic_path
from ..core.lazy import lazy_import

torch = lazy_import("torch")

MODEL_FORMAT = "unlearnbench-checkpoint-v1"
EPOCH_FORMAT = "unlearnbench-epoch-checkpoint-v2"


class CheckpointError(InputFileError):
    """A checkpoint is missing, unreadable, unsafe or does not fit; the message names the file and the fix."""


def fingerprint(**parts) -> str:
    """A canonical string of what produced a training state (compared for equality on resume)."""
    return json.dumps(parts, sort_keys=True, default=str)


def file_sha256(path) -> str:
    """sha256 of a file's bytes (identifies the exact input model an epoch checkpoint continues from)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _save(path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load(path, fix: str) -> dict:
    """torch.load with weights_only=True; anything else (unreadable, truncated, code-running pickle) is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: checkpoint not found; {fix}") from exc
    except Exception as exc:  # UnpicklingError (unsafe or foreign content), RuntimeError (truncated), ...
        raise CheckpointError(f"{path}: refused to load: not a checkpoint this pipeline writes, or damaged "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                              f"nothing in it was executed; {fix}") from exc


# ---------------------------------------------------------------------------------------------- models

def save_model(path, model, *, model_cfg: dict, manifest_sha256: dict, meta: dict) -> None:
    _save(path, {"format": MODEL_FORMAT, "model_cfg": dict(model_cfg), "manifest_sha256": manifest_sha256,
                 "state_dict": model.state_dict(), "meta": meta})


def load_model(path, data, device, build) -> tuple[object, dict]:
    """Load a model written by save_model for experiment `data`; `build(data, model_cfg)` makes the empty model.
    Returns (model on device, {"model_cfg": ..., **meta}); every mismatch is a CheckpointError naming the file."""
    fix = "delete it and rerun the workflow so it is rebuilt"
    state = _load(path, fix)
    if not isinstance(state, dict) or state.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{path}: expected an {MODEL_FORMAT} checkpoint, found something else; {fix}")
    if state["manifest_sha256"] != data.manifest["sha256"]:
        raise CheckpointError(f"{path}: trained on different data than the current experiment data; {fix}")
    model = build(data, state["model_cfg"])
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model {state['model_cfg']}: {exc}; {fix}") from exc
    return model.to(device), {"model_cfg": state["model_cfg"], **state["meta"]}


# ---------------------------------------------------------------------------------------------- epochs

def save_epoch(path, state: dict, fingerprint_: str) -> None:
    _save(path, {"format": EPOCH_FORMAT, "fingerprint": fingerprint_, **state})


def remove_epoch(path) -> None:
    """Drop an epoch checkpoint once the finished model is saved."""
    Path(path).unlink(missing_ok=True)


def load_epoch(path, fingerprint_: str, log) -> dict | None:
    """The training state saved at the end of an epoch, if `path` exists and was written for `fingerprint_`;
    a checkpoint of another recipe, model or data is deleted (and logged) and None returned."""
    if not Path(path).exists():
        return None
    state = _load(path, "delete it to train from scratch")
    if not isinstance(state, dict) or state.get("format") != EPOCH_FORMAT \
            or state.get("fingerprint") != fingerprint_:
        log(f"discarding stale epoch checkpoint {path}: it was written for another training recipe, model or "
            f"data than this job's; training from scratch")
        os.unlink(path)
        return None
    return state
