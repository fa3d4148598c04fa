"""Pieces shared by the JiT benchmark's comparison methods (amnesiac, bad_teacher, unsir, emmn, gkt): the reference's
Adam training loop, its error-maximising / -minimising noise, the forget class, F.kl_div's 'mean'. Not a method (the
registry skips `_` modules)."""
from __future__ import annotations

from ..core.lazy import lazy_import
from .base import engine, torch

F = lazy_import("torch.nn.functional")
optim = lazy_import("unlearnbench.nn.optim")


def train_adam(model, n: int, batch, *, epochs: int, lr: float, batch_size: int, generator, ctx, what: str,
               iterate: bool = True) -> None:
    """The reference's `fit_one_unlearning_cycle` (src/unlearn.py): a fresh Adam, mean cross-entropy over
    mini-batches of a shuffled set of `n` items (reshuffled every epoch, the last short batch kept), train mode,
    `backward(); step(); zero_grad()` in that order, so gradients already on the parameters enter the first step as
    in the reference. `batch(idx)` returns (normalised inputs, labels) of items idx."""
    optimizer = optim.Adam(model.parameters(), lr=lr)
    for epoch in range(epochs):
        model.train()
        total, seen = 0.0, 0
        for idx in engine.batches(n, batch_size, generator):
            xb, yb = batch(idx)
            loss = F.cross_entropy(model.forward_normalized(xb), yb)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total += loss.item() * len(idx)
            seen += len(idx)
        ctx.log(f"{what}: epoch {epoch + 1}/{epochs} train loss {total / max(seen, 1):.4f}")
        if iterate:
            ctx.iteration(model)


def images(model, x, y):
    """batch(idx) for train_adam over real images (uint8, normalised by the model)."""
    return lambda idx: (model.normalize(x[idx.to(x.device)]), y[idx.to(y.device)])


def noise_and_images(model, noise, noise_labels, n_noise_items: int, x=None, y=None):
    """batch(idx) for train_adam over [n_noise_items noise items; real images]: item i < n_noise_items is noise image
    i mod len(noise) (already in the normalised space) with its label, the rest are the images (uint8, normalised by
    the model). The reference's lists of repeated noise copies, without the copies."""

    def batch(idx):
        idx = idx.to(noise.device)
        is_noise = idx < n_noise_items
        xb = torch.empty((len(idx), *noise.shape[1:]), device=noise.device)
        yb = torch.empty(len(idx), dtype=torch.int64, device=noise.device)
        j = idx[is_noise] % len(noise)
        xb[is_noise], yb[is_noise] = noise[j], noise_labels[j]
        if (~is_noise).any():
            j = idx[~is_noise] - n_noise_items
            xb[~is_noise], yb[~is_noise] = model.normalize(x[j]), y[j]
        return xb, yb

    return batch


# Which optimised noise images UNSIR's and EMMN's training sets repeat (knob `noise_per_copy`).
NOISE_PER_COPY = ("channels", "batch")


def copied_noise(noise, per_copy: str):
    """The noise images one copy of the reference's noisy training set holds. `channels`: the first C images, C the
    image channel count (noise.shape[1]), what the reference's builders do (their loop `for k in
    range(batch[0].size(0))` runs over the channels of the first image, not over the batch); `batch`: every image."""
    if per_copy == "batch":
        return noise
    if per_copy != "channels":
        raise ValueError(f"noise_per_copy must be one of {NOISE_PER_COPY}, got {per_copy!r}")
    return noise[:noise.shape[1]]


def optimise_noise(model, noise, label: int, *, steps: int, lr: float, l2: float, maximise: bool):
    """The reference's noise step (src/unlearn.py `UNSIR_noise_train` for maximise=True, `emmn_noise_train` for
    False): Adam (lr) on the noise tensor (already in the normalised input space) for `steps` steps of
        maximise: −CE(f(noise), label) + l2 · mean_b Σ_{c,h,w} noise²      (error-maximising, UNSIR)
        minimise:  CE(f(noise), label)                                       (error-minimising, EMMN)
    The model stays in the mode it is in, and its parameters' gradients accumulate over the steps and are never
    zeroed here (as in the reference, where they then enter the first impair step). Returns the optimised noise,
    detached."""
    noise = noise.detach().clone().requires_grad_(True)
    opt = optim.Adam([noise], lr=lr)
    labels = torch.full((len(noise),), label, dtype=torch.int64, device=noise.device)
    for _ in range(steps):
        ce = F.cross_entropy(model.forward_normalized(noise), labels)
        loss = -ce + l2 * torch.mean(torch.sum(noise ** 2, [1, 2, 3])) if maximise else ce
        opt.zero_grad()
        loss.backward()
        opt.step()
    return noise.detach()


def the_forget_class(y_forget, method: str) -> int:
    """The one label of the forget set (full class: the class; sub-class: its superclass)."""
    labels = torch.unique(y_forget)
    if len(labels) != 1:
        raise ValueError(f"{method} forgets one (super)class: its forget set must have one label, this one has "
                         f"{labels.tolist()[:10]}; run it on full_class or sub_class scenarios only")
    return int(labels[0])


def kl_div(log_q, p, reduction: str):
    """F.kl_div with reduction 'mean' (every element: the reference's torch default, which torch plans to change to
    'batchmean') written as the element-wise loss's mean, or 'batchmean' (÷ batch)."""
    if reduction == "mean":
        return F.kl_div(log_q, p, reduction="none").mean()
    return F.kl_div(log_q, p, reduction=reduction)


def wrong_labels(y, n_classes: int, generator):
    """A label drawn uniformly from the classes other than y, per sample (y + U{1..C−1} mod C)."""
    shift = torch.randint(1, n_classes, y.shape, generator=generator).to(y.device)
    return (y + shift) % n_classes
