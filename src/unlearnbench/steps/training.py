"""Training jobs: the baseline (one per dataset and seed), the retrain oracle (one per scenario and seed) and the
sparse baseline of the Sparsity setting. Each reads its inputs, trains with engine.train (resumable per epoch),
and writes its outputs atomically.
"""
from __future__ import annotations

import dataclasses
import time

import torch

from ..nn import checkpoint, engine, pruning
from ..core import seeds
from ..core.codehash import code_hash
from ..evaluation.evaluate import save_run
from ..datasets.experiment import ExperimentData
from ..core.logs import get_logger
from ..nn.models import build_model
from ..nn.pruning import rewind_epoch  # noqa: F401  (the rewind epoch of the sparse baseline)
from ..scenarios import ForgetRequest


def TRAINING_CODE() -> str:
    """The hash of the training code (this module and what it imports: engine, models, ...), bound into every epoch
    checkpoint's fingerprint: the rules' `code` param of the training jobs."""
    return code_hash("unlearnbench.steps.training")


def new_model(data: ExperimentData, model_cfg: dict) -> torch.nn.Module:
    m = data.manifest
    return build_model(model_cfg["arch"], in_channels=m["channels"], n_classes=m["n_classes"],
                       mean=m["mean"], std=m["std"], width=model_cfg["width"],
                       image_size=m.get("image_size"), head=model_cfg.get("head"))


def load_model(path, data: ExperimentData, device) -> tuple[torch.nn.Module, dict]:
    """A model written by checkpoint.save_model for `data` (CheckpointError naming the file on any mismatch)."""
    return checkpoint.load_model(path, data, device, new_model)


def save_model(path, model, data: ExperimentData, model_cfg: dict, meta: dict) -> None:
    checkpoint.save_model(path, model, model_cfg=model_cfg, manifest_sha256=data.manifest["sha256"], meta=meta)


def _train_cfg(training: dict) -> engine.TrainConfig:
    return engine.TrainConfig(**training["train"])


def _val_acc(model, data: ExperimentData, dev) -> float:
    x_val, y_val = engine.to_device(data.images("val"), data.labels("val"), dev)
    return float((engine.predict_logits(model, x_val).argmax(1) == y_val.cpu()).float().mean())


def _fit(data: ExperimentData, images, labels, training: dict, seed: int, device: str, threads: int, log,
         checkpoint_path: str, request: dict | None, on_epoch_end=None, kept: dict | None = None,
         **stamp_parts) -> tuple[torch.nn.Module, dict]:
    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    generator = engine.seed_everything(seeds.derive(seed, "train"))
    model = new_model(data, training["model"]).to(dev)
    x, y = engine.to_device(images, labels, dev)
    log(f"training {training['model']['arch']} on {len(x)} images, seed {seed}, device {dev}")
    # the epoch checkpoint resumes only the same recipe, model, data, request and training code (a code change
    # between a crash and the rerun trains from scratch)
    stamp = checkpoint.fingerprint(train=training["train"], model=training["model"], data=data.manifest["sha256"],
                                   request=request, seed=seed, n=len(x), code=TRAINING_CODE(), **stamp_parts)
    try:
        history = engine.train(model, x, y, _train_cfg(training), generator=generator, log=log,
                               checkpoint=checkpoint_path, fingerprint=stamp,
                               on_epoch_end=on_epoch_end, kept=kept)
    except engine.DivergedError as exc:
        raise engine.DivergedError(f"{exc}; no model was saved. Lower this dataset's learning rate "
                                   f"(datasets.<name>.train.lr in the config; now {training['train'].get('lr')}) "
                                   f"or check its data") from exc
    seconds = history[-1]["seconds"] if history else 0.0
    val_acc = _val_acc(model, data, dev)
    log(f"done: {seconds:.1f}s of training (across resumes), validation accuracy {val_acc:.4f}")
    return model, {"seed": seed, "train_seconds": seconds, "val_acc": val_acc, "history": history, "n_train": len(x)}


def train_baseline(*, experiment: str, model: str, training: dict, seed: int, device: str, threads: int,
                   rewind: str | None = None, rewind_epoch: int | None = None, log: str | None = None) -> dict:
    """Rule baseline: a model trained from scratch on the full training set. With `rewind` (a path) it also saves
    its state at the end of epoch `rewind_epoch`, the rewind point of the sparse baseline (Unlearn-Sparse's OMP).
    The rewind state travels in the epoch checkpoint (engine.train `kept`), so a job killed or preempted after the
    rewind epoch resumes with it and writes `rewind` at the end like an uninterrupted one."""
    data = ExperimentData.load(experiment)
    log_fn = get_logger(log).info
    on_epoch_end, kept = None, None
    if rewind is not None:
        epochs = int(training["train"]["epochs"])
        if rewind_epoch is None or not 1 <= rewind_epoch < epochs:
            raise ValueError(f"sparse_baseline.rewind_epoch: {rewind_epoch} must be in 1..{epochs - 1} (the training "
                             f"epochs of this dataset, {epochs}, minus one)")

        kept = {}

        def on_epoch_end(epoch, net):
            if epoch == rewind_epoch:
                kept["rewind"] = {k: v.detach().clone() for k, v in net.state_dict().items()}
                log_fn(f"kept the epoch-{epoch} state (sparse baseline rewind point)")

    net, meta = _fit(data, data.images("train"), data.labels("train"), training, seed, device, threads,
                     log_fn, model + ".epoch", request=None, on_epoch_end=on_epoch_end, kept=kept,
                     rewind_epoch=rewind_epoch if rewind is not None else None)
    if rewind is not None:
        if "rewind" not in kept:  # cannot happen: the fingerprint binds the checkpoint to rewind_epoch
            raise checkpoint.CheckpointError(f"{model}.epoch: resumed without the epoch-{rewind_epoch} rewind state; "
                                             f"delete it and rerun")
        state = new_model(data, training["model"]).to(next(net.parameters()).device)
        state.load_state_dict(kept["rewind"])
        save_model(rewind, state, data, training["model"],
                   {"seed": seed, "epoch": rewind_epoch, "rewind_of": int(training["train"]["epochs"])})
        log_fn(f"saved the epoch-{rewind_epoch} state to {rewind} (sparse baseline rewind point)")
    save_model(model, net, data, training["model"], meta)
    checkpoint.remove_epoch(model + ".epoch")
    return meta


def train_oracle(*, experiment: str, request: str, model: str, run: str, outputs: str, training: dict,
                 identity: dict, seed: int, device: str, threads: int, reference: str = "retrain",
                 log: str | None = None) -> dict:
    """Rule retrain_oracle: a fresh model trained from scratch on the request's D \\ ΔD as reference oracle
    `reference` defines it (the gold standard "retrain", or a further reference the scenario declares, e.g. the
    bias scenario's "retrain_replace"), then evaluated as the method of that name (its unlearning time is its
    training time)."""
    data = ExperimentData.load(experiment)
    req = ForgetRequest.load(request)
    images, labels = req.oracle_training_set(data, reference)
    net, meta = _fit(data, images, labels, training, seed, device, threads, get_logger(log).info,
                     model + ".epoch", request={**req.description, "reference": reference})
    save_model(model, net, data, training["model"], meta)
    checkpoint.remove_epoch(model + ".epoch")
    dev = engine.resolve_device(device)
    identity = {**identity, "run": reference, "method": reference, "setting": "standard"}
    return save_run(net, data, req, dev, run, outputs, identity,
                    {"ut_seconds": meta["train_seconds"], "ut_device_seconds": meta["train_seconds"],
                     "param_change": 0.0}, [])


def train_tuning_oracle(*, experiment: str, request: str, model: str, training: dict, seed: int, device: str,
                        threads: int, log: str | None = None) -> dict:
    """Rule tuning_oracle (docs/tuning.md): the retrain oracle of a tuning request, trained like the evaluated
    oracle but from the experiment loaded without its test split (ExperimentData.load(test=False)); not evaluated
    here (the tune stage scores it on validation data)."""
    data = ExperimentData.load(experiment, test=False)
    req = ForgetRequest.load(request)
    if not req.description.get("tuning"):
        raise ValueError(f"{request}: not a tuning request (rule tuning_request writes them)")
    images, labels = req.oracle_training_set(data)
    net, meta = _fit(data, images, labels, training, seed, device, threads, get_logger(log).info,
                     model + ".epoch", request=req.description)
    save_model(model, net, data, training["model"], meta)
    checkpoint.remove_epoch(model + ".epoch")
    return meta


def train_sparse_baseline(*, experiment: str, dense: str, model: str, training: dict, sparsity: float, epochs: int,
                          seed: int, device: str, threads: int, rewind: str | None = None,
                          rewind_epoch: int | None = None, log: str | None = None) -> dict:
    """Rule sparse_baseline, Unlearn-Sparse's sparse "original" (Jia, Liu et al. 2023, OMP): one-shot global
    magnitude pruning of the dense baseline's conv weights to `sparsity`, then retraining on the full training set
    with the mask fixed, with the dataset's training recipe over `epochs` epochs.

    With `rewind` (the dense baseline's state after epoch `rewind_epoch` = k, saved by rule baseline): weight and
    learning-rate rewinding as Unlearn-Sparse's `--prune_type rewind_lt --rewind_epoch 8`: the mask comes from the
    final dense weights, then every weight and buffer is reset to its epoch-k value, the mask applied, and the
    schedule continues from epoch k (epochs k+1..`epochs` are trained). Without it: retraining starts from the
    pruned trained weights, the schedule from its start (all `epochs`).
    The masks are saved in the checkpoint meta (`sparse_masks`: conv weight name → bool mask); the model's pruned
    weights are exactly 0."""
    log_fn = get_logger(log).info
    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    data = ExperimentData.load(experiment)
    net, dense_meta = load_model(dense, data, dev)
    x, y = engine.to_device(data.images("train"), data.labels("train"), dev)
    dense_acc = _val_acc(net, data, dev)
    pairs = pruning.prune_model(net, sparsity)
    n = sum(m.numel() for _, m in pairs)
    n_pruned = n - sum(int(m.sum()) for _, m in pairs)
    pruned_acc = _val_acc(net, data, dev)
    first_epoch, rewound_acc = 0, None
    if rewind is not None:
        if rewind_epoch is None or not 1 <= rewind_epoch < epochs:
            raise ValueError(f"sparse_baseline.rewind_epoch: {rewind_epoch} must be in 1..{epochs - 1} (the sparse "
                             f"baseline's retraining epochs, {epochs}, minus one)")
        early, early_meta = load_model(rewind, data, dev)
        if early_meta.get("epoch") != rewind_epoch:
            raise checkpoint.CheckpointError(f"{rewind}: holds epoch {early_meta.get('epoch')}, the run asks to rewind "
                                             f"to epoch {rewind_epoch}; delete it and rerun the baseline")
        net.load_state_dict(early.state_dict())  # copies into the same tensors: `pairs` still points at them
        with torch.no_grad():
            for w, m in pairs:
                w.mul_(m)
        first_epoch = rewind_epoch
        rewound_acc = _val_acc(net, data, dev)
    log_fn(f"pruned conv weights to sparsity {n_pruned / n:.4f} ({n_pruned}/{n}); validation accuracy "
           f"{dense_acc:.4f} dense -> {pruned_acc:.4f} pruned"
           + (f" -> {rewound_acc:.4f} rewound to epoch {first_epoch}" if rewind is not None else "")
           + f"; retraining epochs {first_epoch + 1}..{epochs} with the mask fixed")
    remask, remove = pruning.fix_masks(pairs)
    generator = engine.seed_everything(seeds.derive(seed, "sparse_retrain"))
    cfg = dataclasses.replace(_train_cfg(training), epochs=epochs)
    stamp = checkpoint.fingerprint(train=dataclasses.asdict(cfg), model=training["model"],
                                   data=data.manifest["sha256"], dense=checkpoint.file_sha256(dense), sparsity=sparsity,
                                   code=TRAINING_CODE(),
                                   seed=seed, rewind=None if rewind is None else checkpoint.file_sha256(rewind),
                                   rewind_epoch=first_epoch)
    t0 = time.perf_counter()
    try:
        history = engine.train(net, x, y, cfg, generator=generator, log=log_fn, checkpoint=model + ".epoch",
                               fingerprint=stamp, after_step=remask, first_epoch=first_epoch) if epochs > 0 else []
    finally:
        remove()
    remask()
    seconds = history[-1]["seconds"] if history else time.perf_counter() - t0
    zeros = sum(int((w[m == 0] == 0).sum()) for w, m in pairs)
    if zeros != n_pruned:
        raise RuntimeError(f"sparse baseline: {n_pruned - zeros} pruned weights revived during retraining")
    acc = _val_acc(net, data, dev)
    log_fn(f"retrained in {seconds:.1f}s, validation accuracy {acc:.4f}")
    masks = {name: m.detach().bool().cpu() for name, (_, m) in zip(pruning.conv_weight_names(net), pairs)}
    meta = {"seed": seed, "train_seconds": seconds, "val_acc": acc, "history": history, "n_train": len(x),
            "sparsity": sparsity, "n_pruned": n_pruned, "n_conv_weights": n, "retrain_epochs": epochs - first_epoch,
            "rewind_epoch": first_epoch if rewind is not None else None, "rewound_val_acc": rewound_acc,
            "dense_val_acc": dense_acc, "pruned_val_acc": pruned_acc, "sparse_masks": masks,
            "dense_train_seconds": dense_meta.get("train_seconds")}
    save_model(model, net, data, dense_meta["model_cfg"], meta)
    checkpoint.remove_epoch(model + ".epoch")
    return meta
