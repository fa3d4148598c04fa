"""One training / evaluation loop for baseline, oracle and every method that trains.

The dataset lives on the device as uint8 NCHW; shuffling uses a seeded generator; augmentation runs on
the device per batch; on CUDA the step runs under bf16 autocast with channels_last. On CPU the same code
runs in fp32 and is deterministic for a given seed and thread count.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, asdict
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint as checkpoints


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but no CUDA device is visible; set device: auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (initialisation, dropout) and return a generator for data order."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def configure_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(int(n))


def to_device(images: np.ndarray, labels: np.ndarray | None, device: torch.device):
    """uint8 NHW or NHWC numpy → uint8 NCHW tensor on device (and int64 labels)."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    x = x.contiguous().to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    if labels is None:
        return x
    return x, torch.as_tensor(np.asarray(labels), dtype=torch.int64, device=device)


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int, flip: bool) -> torch.Tensor:
    """Random crop with zero padding and optional horizontal flip, batched on the device."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chan, rows, cols]
    if flip:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out = torch.where(mirror[:, None, None, None], out.flip(3), out)
    return out


class DivergedError(FloatingPointError):
    """The training loss became NaN or infinite: the job fails instead of saving a broken model as a success."""


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    # plain (heavy-ball) momentum as torch.optim.SGD's default and the reference codes (Unlearn-Sparse, SCRUB, JiT);
    # True: Nesterov's variant (docs/methods.md, "Momentum")
    nesterov: bool = False
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    schedule: str = "onecycle"
    augment: bool = False
    flip: bool = False
    # torch.compile the model for the training steps. CUDA only (ignored on CPU, where it was never measured
    # to help and costs seconds of compilation plus ~1.4 s of torch._dynamo import per process); off by
    # default until the H100 benchmark (benchmarks/train_speed.py --compile) shows it pays for its compile time.
    compile: bool = False
    # drop a short final minibatch (fixed batch shapes for training and torch.compile); unlearning methods keep it,
    # as the reference codes' DataLoaders do
    drop_last: bool = True


def batches(n: int, batch_size: int, generator: torch.Generator | None = None, *, shuffle: bool = True,
            drop_last: bool = False, device=None):
    """Index tensors of the minibatches of an epoch over n items: a permutation drawn from `generator` (shuffle) or
    0..n-1 in order, cut into `batch_size` pieces (at most n); drop_last drops a short final piece. The one
    minibatch loop of the package (training, every method)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if device is not None:
        order = order.to(device)
    batch_size = max(1, min(batch_size, n))
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


class SGD:
    """SGD with momentum, Nesterov and decoupled-from-loss (L2) weight decay, as multi-tensor foreach ops.

    Same update as torch.optim.SGD. Our own because torch.optim's first step imports torch._dynamo
    (about 1.4 s of CPU per process), which would dominate every short job and be counted in the
    unlearning time of the first method step.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.momentum, self.weight_decay, self.nesterov = lr, momentum, weight_decay, nesterov
        self.buffers: list[torch.Tensor] | None = None

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        with_grad = [p for p in self.params if p.grad is not None]
        grads = [p.grad for p in with_grad]
        if self.weight_decay:
            grads = torch._foreach_add(grads, with_grad, alpha=self.weight_decay)
        if self.momentum:
            if self.buffers is None:
                self.buffers = [torch.zeros_like(p) for p in self.params]
            bufs = [b for b, p in zip(self.buffers, self.params) if p.grad is not None]
            torch._foreach_mul_(bufs, self.momentum)
            torch._foreach_add_(bufs, grads)
            grads = torch._foreach_add(grads, bufs, alpha=self.momentum) if self.nesterov else bufs
        torch._foreach_add_(with_grad, grads, alpha=-self.lr)

    def state_dict(self) -> dict:
        return {"lr": self.lr, "buffers": self.buffers}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.buffers = state["lr"], state["buffers"]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> SGD:
    return SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
               nesterov=cfg.nesterov and cfg.momentum > 0)


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The schedule: constant, or one-cycle (PyTorch OneCycleLR's cosine form: warm-up from lr/25 over the
    first 25% of steps, then down to lr/25e4)."""
    if cfg.schedule == "constant":
        return cfg.lr
    warmup = max(1, int(0.25 * total_steps))
    start, peak, end = cfg.lr / 25.0, cfg.lr, cfg.lr / 25.0e4
    if step < warmup:
        t, low, high = step / warmup, start, peak
    else:
        t, low, high = (step - warmup) / max(1, total_steps - warmup), peak, end
    return high + (low - high) * (1 + math.cos(math.pi * t)) / 2


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    *,
    generator: torch.Generator,
    log: Callable[[str], None] = print,
    checkpoint: str | os.PathLike | None = None,
    fingerprint: str = "",
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
    extra_loss: Callable[[nn.Module], torch.Tensor] | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    first_epoch: int = 0,
    kept: dict | None = None,
) -> list[dict]:
    """Minimise cross-entropy on (x, y); returns per-epoch history.

    checkpoint: a path written at the end of every epoch (model, optimiser, schedule, data-order RNG, seconds so
    far); if it exists at start and was written for `fingerprint` (the recipe, model and data; unlearnbench.nn.checkpoint),
    training resumes from it and ends with the same weights as an uninterrupted run. Each history record carries
    `seconds`: training time up to the end of that epoch, accumulated across resumes.
    extra_loss / after_step: hooks for regularised methods (ℓ1 sparsity, fixed pruning masks).
    A loss that becomes NaN or infinite raises DivergedError at the end of its epoch (before any checkpoint of it).
    first_epoch: start the schedule there (epochs first_epoch+1..cfg.epochs are trained, the learning rate continues
    from step first_epoch·steps_per_epoch): learning-rate rewinding of the sparse baseline (training.py).
    kept: states the caller keeps during training (e.g. the baseline's rewind point, put there by on_epoch_end):
    saved in every epoch checkpoint and restored into the dict on resume, so a resumed job still has them.
    """
    device = x.device
    n = len(x)
    drop_last = cfg.drop_last and n > cfg.batch_size
    steps_per_epoch = n // cfg.batch_size if drop_last else -(-n // cfg.batch_size)
    optimizer = make_optimizer(model, cfg)
    total_steps = max(1, cfg.epochs * steps_per_epoch)
    history: list[dict] = []
    start_epoch = first_epoch
    seconds_before = 0.0
    state = checkpoints.load_epoch(checkpoint, fingerprint, log) if checkpoint is not None else None
    if state is not None:
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise checkpoints.CheckpointError(f"{checkpoint}: the epoch checkpoint does not fit this model ({exc}); "
                                              "delete it to train from scratch") from exc
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, history, seconds_before = state["epoch"], state["history"], state["seconds"]
        if kept is not None:
            kept.update(state.get("kept") or {})
        log(f"resumed from {checkpoint} at epoch {start_epoch} ({seconds_before:.1f}s of training before)")
    autocast = device.type == "cuda"
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)  # matches the channels_last data; a no-op for 1-D/2-D params
    step_model = model
    if cfg.compile:
        if device.type == "cuda":
            # fixed batch shapes (drop_last) mean one compilation; the hooks still see the eager module,
            # whose parameters the compiled one shares
            step_model = torch.compile(model, dynamic=False)
        else:
            log("train.compile ignored: torch.compile is used on CUDA only")
    t0 = time.perf_counter()
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        seen = 0
        for idx in batches(n, cfg.batch_size, generator, drop_last=drop_last, device=device):
            xb, yb = x[idx], y[idx]
            if cfg.augment:
                xb = random_crop_flip(xb, generator, pad=max(1, xb.shape[-1] // 8), flip=cfg.flip)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = step_model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
                if extra_loss is not None:
                    loss = loss + extra_loss(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.lr = learning_rate(cfg, step, total_steps)
            optimizer.step()
            step += 1
            if after_step is not None:
                after_step(model)
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == yb).sum()
            seen += len(idx)
        record = {"epoch": epoch + 1, "loss": float(loss_sum) / seen, "train_acc": float(correct) / seen,
                  "seconds": seconds_before + time.perf_counter() - t0}
        if not math.isfinite(record["loss"]):
            raise DivergedError(f"training diverged: the loss became {record['loss']} in epoch {epoch + 1}/"
                                f"{cfg.epochs} (lr {cfg.lr}, batch_size {cfg.batch_size}, schedule {cfg.schedule}); "
                                f"nothing of this epoch was saved")
        history.append(record)
        elapsed = time.perf_counter() - t0
        done = epoch + 1 - start_epoch
        left = elapsed / done * (cfg.epochs - epoch - 1)
        log(f"epoch {epoch + 1}/{cfg.epochs} loss {record['loss']:.4f} train_acc {record['train_acc']:.4f} "
            f"elapsed {elapsed:.1f}s left {left:.1f}s")
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, model)
        if checkpoint is not None:
            checkpoints.save_epoch(checkpoint, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                "epoch": epoch + 1, "history": history, "seconds": record["seconds"],
                **({"kept": kept} if kept else {}),
            }, fingerprint)
    return history


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Logits for every image, in eval mode, in large batches; returned as float32 on the CPU."""
    model.eval()
    autocast = x.device.type == "cuda"
    out = []
    for start in range(0, len(x), batch_size):
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            out.append(model(x[start:start + batch_size]).float().cpu())
    if not out:
        return torch.zeros((0, 0))
    return torch.cat(out)


def config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
