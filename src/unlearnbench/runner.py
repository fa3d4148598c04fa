"""Job-level entry points: what each Snakemake rule calls (the workflow scripts only pass arguments).

Each function reads its inputs, does the real computation, and writes its outputs atomically.
"""
from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from . import engine
from .data import ExperimentData, ForgetRequest
from .evaluate import iteration_probe, model_outputs, parameters_changed
from .io import atomic_path, atomic_save_npz, atomic_write_json
from .models import build_model

CHECKPOINT_FORMAT = "unlearnbench-checkpoint-v1"


class CheckpointError(RuntimeError):
    pass


def get_logger(log_path: str | None) -> logging.Logger:
    """A logger that writes progress lines to the rule's log: file (and nowhere else)."""
    logger = logging.getLogger(f"unlearnbench.{log_path}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.FileHandler(log_path) if log_path else logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    return logger


# ---------------------------------------------------------------------------------------------- models

def new_model(data: ExperimentData, model_cfg: dict) -> torch.nn.Module:
    m = data.manifest
    return build_model(model_cfg["arch"], in_channels=m["channels"], n_classes=m["n_classes"],
                       mean=m["mean"], std=m["std"], width=model_cfg["width"],
                       image_size=m.get("image_size"), head=model_cfg.get("head"))


def save_model(path: str, model: torch.nn.Module, data: ExperimentData, model_cfg: dict, meta: dict) -> None:
    state = {"format": CHECKPOINT_FORMAT, "model_cfg": model_cfg, "manifest_sha256": data.manifest["sha256"],
             "state_dict": model.state_dict(), "meta": meta}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_model(path: str, data: ExperimentData, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """Load a checkpoint written by save_model; any mismatch is a CheckpointError naming the file and the fix."""
    fix = "delete it and rerun the workflow so it is rebuilt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated, not a torch file, ...
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc}); {fix}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: expected an {CHECKPOINT_FORMAT} checkpoint, found something else; {fix}")
    if state["manifest_sha256"] != data.manifest["sha256"]:
        raise CheckpointError(f"{path}: trained on different data than the current experiment data; {fix}")
    model = new_model(data, state["model_cfg"])
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model {state['model_cfg']}: {exc}; {fix}") from exc
    return model.to(device), {"model_cfg": state["model_cfg"], **state["meta"]}


def train_cfg(dataset_cfg: dict) -> engine.TrainConfig:
    return engine.TrainConfig(**dataset_cfg["train"])


def train_model(data_npz: str, request_npz: str | None, out_model: str, dataset_cfg: dict, seed: int,
                device: str, threads: int, log_path: str | None, checkpoint: str | None = None) -> dict:
    """Baseline (request None: the full training set) or retrain oracle (the request's D \\ ΔD) from scratch."""
    log = get_logger(log_path).info
    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    data = ExperimentData.load(data_npz)
    if request_npz is None:
        images, labels = data.images("train"), data.labels("train")
    else:
        images, labels = ForgetRequest.load(request_npz).oracle_training_set(data)
    generator = engine.seed_everything(seed)
    model = new_model(data, dataset_cfg["model"]).to(dev)
    x, y = engine.to_device(images, labels, dev)
    log(f"training {dataset_cfg['model']['arch']} on {len(x)} images, seed {seed}, device {dev}")
    t0 = time.perf_counter()
    history = engine.train(model, x, y, train_cfg(dataset_cfg), generator=generator, log=log,
                           checkpoint=checkpoint)
    seconds = time.perf_counter() - t0
    x_val, y_val = engine.to_device(data.images("val"), data.labels("val"), dev)
    val_acc = float((engine.predict_logits(model, x_val).argmax(1) == y_val.cpu()).float().mean())
    log(f"done in {seconds:.1f}s, validation accuracy {val_acc:.4f}")
    meta = {"seed": seed, "train_seconds": seconds, "val_acc": val_acc, "history": history, "n_train": len(x)}
    save_model(out_model, model, data, dataset_cfg["model"], meta)
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
    return meta


def train_sparse_baseline(data_npz: str, dense_model: str, out_model: str, dataset_cfg: dict, sparsity: float,
                          epochs: int, seed: int, device: str, threads: int, log_path: str | None,
                          checkpoint: str | None = None) -> dict:
    """Unlearn-Sparse's sparse "original" (Jia, Liu et al. 2023, OMP): one-shot global magnitude pruning of the
    dense baseline's conv weights to `sparsity`, then retraining on the full training set with the mask fixed
    (the dataset's training recipe, `epochs` epochs, starting from the pruned trained weights). The masks are
    saved in the checkpoint meta (`sparse_masks`: conv weight name → bool mask), the model's pruned weights are
    exactly 0."""
    import dataclasses

    from .methods.settings import conv_weight_names, fix_masks, prune_model

    log = get_logger(log_path).info
    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    data = ExperimentData.load(data_npz)
    model, dense_meta = load_model(dense_model, data, dev)
    x, y = engine.to_device(data.images("train"), data.labels("train"), dev)
    x_val, y_val = engine.to_device(data.images("val"), data.labels("val"), dev)

    def val_acc() -> float:
        return float((engine.predict_logits(model, x_val).argmax(1) == y_val.cpu()).float().mean())

    dense_acc = val_acc()
    pairs = prune_model(model, sparsity)
    n = sum(m.numel() for _, m in pairs)
    n_pruned = n - sum(int(m.sum()) for _, m in pairs)
    pruned_acc = val_acc()
    log(f"pruned conv weights to sparsity {n_pruned / n:.4f} ({n_pruned}/{n}); validation accuracy "
        f"{dense_acc:.4f} dense -> {pruned_acc:.4f} pruned; retraining {epochs} epochs with the mask fixed")
    remask, remove = fix_masks(pairs)
    generator = engine.seed_everything(seed * 7919 + 101)
    cfg = dataclasses.replace(train_cfg(dataset_cfg), epochs=epochs)
    t0 = time.perf_counter()
    try:
        history = engine.train(model, x, y, cfg, generator=generator, log=log, checkpoint=checkpoint,
                               after_step=remask) if epochs > 0 else []
    finally:
        remove()
    remask()
    seconds = time.perf_counter() - t0
    zeros = sum(int((w[m == 0] == 0).sum()) for w, m in pairs)
    if zeros != n_pruned:
        raise RuntimeError(f"sparse baseline: {n_pruned - zeros} pruned weights revived during retraining")
    acc = val_acc()
    log(f"retrained in {seconds:.1f}s, validation accuracy {acc:.4f}")
    masks = {name: m.detach().bool().cpu() for name, (_, m) in zip(conv_weight_names(model), pairs)}
    meta = {"seed": seed, "train_seconds": seconds, "val_acc": acc, "history": history, "n_train": len(x),
            "sparsity": sparsity, "n_pruned": n_pruned, "n_conv_weights": n, "retrain_epochs": epochs,
            "dense_val_acc": dense_acc, "pruned_val_acc": pruned_acc, "sparse_masks": masks,
            "dense_train_seconds": dense_meta.get("train_seconds")}
    save_model(out_model, model, data, dense_meta["model_cfg"], meta)
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
    return meta


def sparse_masks(model: torch.nn.Module, meta: dict) -> list[torch.Tensor] | None:
    """The sparse baseline's masks (meta `sparse_masks`) in `conv_weights` order, or None for a dense model."""
    from .methods.settings import conv_weight_names

    stored = meta.get("sparse_masks")
    if stored is None:
        return None
    names = conv_weight_names(model)
    if set(stored) != set(names):
        raise CheckpointError(f"sparse baseline masks name {sorted(stored)}, the model has {names}")
    return [stored[name] for name in names]


# ---------------------------------------------------------------------------------------------- unlearning

def _method_inputs(method, data: ExperimentData, request: ForgetRequest, dev, extra_reads=frozenset()):
    """The data the method declared (plus what its setting declares; the setting hands the method only its own)."""
    from .methods import UnlearnData

    inputs = UnlearnData(n_train=len(data.labels("train")), n_classes=data.n_classes)
    sources = {"forget": request.forget_set, "retain": request.retain_set,
               "forget_counterfactual": request.forget_counterfactual}
    for kind in sorted(method.reads | extra_reads):
        pair = sources[kind](data)
        if pair is not None:
            setattr(inputs, kind, engine.to_device(*pair, dev))
    return inputs


def _timed(dev: torch.device):
    """Start a wall clock and a device clock (CUDA events on GPU, process CPU time on CPU)."""
    if dev.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        t0 = time.perf_counter()

        def stop():
            end.record()
            torch.cuda.synchronize()
            return time.perf_counter() - t0, start.elapsed_time(end) / 1000.0
        return stop
    t0, c0 = time.perf_counter(), time.process_time()
    return lambda: (time.perf_counter() - t0, time.process_time() - c0)


def run_unlearning(data_npz: str, request_npz: str, baseline: str, run: str, method_name: str, knobs: dict,
                   seed: int, device: str, threads: int, out_model: str, out_run: str, out_outputs: str,
                   log_path: str | None, fail: bool = False, setting: str = "standard",
                   setting_knobs: dict | None = None) -> dict:
    """Apply one unlearning method (in a setting: standard, sparsity, uib) to the seed's baseline, time it alone
    (the setting's own work, e.g. UIB's sampling and regularisation, included), and save the model's outputs.
    Sparsity runs start from the sparse baseline (train_sparse_baseline; its pruning and retraining are not
    unlearning time, as in Unlearn-Sparse where the sparse model is the original) and keep its mask fixed."""
    from .methods import UnlearnContext, apply_setting, build_method, make_setting_knobs, setting_reads

    log = get_logger(log_path).info
    if fail:
        raise RuntimeError(f"fault injection: run {run} seed {seed} was configured to fail (config fault_injection)")
    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    data = ExperimentData.load(data_npz)
    request = ForgetRequest.load(request_npz)
    model, baseline_meta = load_model(baseline, data, dev)
    method = build_method(method_name, knobs, where=f"methods.{run}")
    s_knobs = make_setting_knobs(setting, setting_knobs, where=f"methods.{run}", method=method_name)
    inputs = _method_inputs(method, data, request, dev, extra_reads=setting_reads(setting))
    probe, trace = iteration_probe(data, request, dev)
    probe(0, model)
    before = copy.deepcopy(model.state_dict())
    masks = sparse_masks(model, baseline_meta) if setting == "sparsity" else None
    generator = engine.seed_everything(seed * 7919 + 17)
    ctx = UnlearnContext(dev, generator, log=log, on_iteration=probe)
    log(f"unlearning with {method_name} {knobs} in setting {setting} {setting_knobs or {}} on {request.scenario}, "
        f"seed {seed}")
    stop = _timed(dev)
    apply_setting(setting, s_knobs, model, method, inputs, ctx, masks=masks)
    wall, device_seconds = stop()
    wall -= ctx.excluded_seconds
    device_seconds = max(0.0, device_seconds - ctx.excluded_seconds)
    change = parameters_changed(before, model)
    log(f"unlearning took {wall:.2f}s (evaluation between iterations excluded); parameter change {change:.4g}")
    save_model(out_model, model, data, baseline_meta["model_cfg"],
               {"seed": seed, "run": run, "method": method_name, "knobs": knobs})
    return _save_run(model, data, request, dev, out_run, out_outputs,
                     {"ut_seconds": wall, "ut_device_seconds": device_seconds, "param_change": change},
                     trace)


def evaluate_checkpoint(data_npz: str, request_npz: str, model_path: str, seed: int, device: str, threads: int,
                        out_run: str, out_outputs: str, log_path: str | None, ut_from_training: bool) -> dict:
    """Evaluate a reference model (the baseline as 'original', or the retrain oracle as 'retrain')."""
    log = get_logger(log_path).info
    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    data = ExperimentData.load(data_npz)
    request = ForgetRequest.load(request_npz)
    model, meta = load_model(model_path, data, dev)
    ut = meta["train_seconds"] if ut_from_training else 0.0
    log(f"evaluating {model_path} on {request.scenario}, seed {seed}")
    return _save_run(model, data, request, dev, out_run, out_outputs,
                     {"ut_seconds": ut, "ut_device_seconds": ut, "param_change": 0.0}, [])


def _save_run(model, data, request, dev, out_run, out_outputs, info, trace):
    """Write the model's per-sample outputs and the run record; metrics are computed from them downstream."""
    outputs = model_outputs(model, data, request, dev)
    if not all(np.isfinite(v).all() for k, v in outputs.items() if k.endswith("_logits")):
        raise FloatingPointError(
            "the model's outputs are not finite after unlearning (the method diverged); lower its learning rate "
            "or, for influence, raise `scale` / `damping` (see docs/methods.md)")
    info = {**info, "ut_minutes": info["ut_seconds"] / 60.0, "n_classes": data.n_classes}
    atomic_save_npz(out_outputs, outputs)
    atomic_write_json(out_run, {"info": info, "trace": trace})
    return info
