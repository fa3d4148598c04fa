"""Magnitude pruning with a fixed mask: the Sparsity setting's sparse baseline (training.train_sparse_baseline) and
its wrapper (methods/sparsity.py) share it. See docs/methods.md, "sparsity".
"""
from __future__ import annotations

from ..core.lazy import lazy_import

torch = lazy_import("torch")
nn = lazy_import("torch.nn")


# Unlearn-Sparse's OMP rewinds to epoch 8 of its 182 training epochs (main_imp.py --rewind_epoch 8)
REWIND_EPOCH, REWIND_OF = 8, 182


def rewind_epoch(epochs: int, configured: int | None = None) -> int:
    """The sparse baseline's rewind epoch k: `configured`, else Unlearn-Sparse's 8/182 of the dataset's training
    epochs, rounded, at least 1 (20 epochs -> 1). ConfigError unless 1 <= k < epochs. Torch-free (the rules call it)."""
    from ..core.errors import ConfigError

    k = int(configured) if configured is not None else max(1, round(REWIND_EPOCH * epochs / REWIND_OF))
    if not 1 <= k < epochs:
        raise ConfigError(f"sparse_baseline.rewind_epoch: {k} must be in 1..{epochs - 1} (the dataset's train.epochs, "
                          f"{epochs}, minus one); set another rewind_epoch or sparse_baseline.rewind: false")
    return k


class SparseModelError(ValueError):
    """The starting model of a sparsity run is not the sparse baseline it should be."""


def conv_weights(model) -> list:
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def conv_weight_names(model) -> list[str]:
    """state_dict keys of `conv_weights(model)`, in the same order."""
    return [f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def global_magnitude_masks(weights: list, sparsity: float) -> list:
    """Masks pruning exactly round(sparsity·N) of the N weights with the smallest |w| (ties by position)."""
    with torch.no_grad():
        flat = torch.cat([w.detach().abs().flatten().float() for w in weights])
        n_prune = int(round(sparsity * flat.numel()))
        keep = torch.ones_like(flat, dtype=torch.bool)
        if n_prune > 0:
            keep[torch.argsort(flat, stable=True)[:n_prune]] = False
        masks, start = [], 0
        for w in weights:
            masks.append(keep[start:start + w.numel()].view_as(w).to(w.dtype))
            start += w.numel()
    return masks


def prune_model(model, sparsity: float) -> list[tuple]:
    """One-shot global magnitude pruning of conv weights; returns (weight, mask) pairs, weights masked."""
    weights = conv_weights(model)
    masks = global_magnitude_masks(weights, sparsity)
    with torch.no_grad():
        for w, m in zip(weights, masks):
            w.mul_(m)
    return list(zip(weights, masks))


def model_masks(model, masks: list | None, sparsity: float) -> list[tuple]:
    """(conv weight, mask) pairs of an already pruned model, checked against the configured sparsity.

    Explicit masks (from the sparse baseline's checkpoint) must prune exactly round(sparsity·N) of the N conv
    weights, and the model's pruned weights must be 0; without masks they are recovered from the exact zeros
    (then at least round(sparsity·N) must be zero)."""
    weights = conv_weights(model)
    n = sum(w.numel() for w in weights)
    target = int(round(sparsity * n))
    fix = ("run sparsity-setting methods from the sparse baseline (rule sparse_baseline, "
           "training.train_sparse_baseline), which prunes and retrains the dense model with the mask fixed")
    if masks is None:
        masks = [(w.detach() != 0).to(w.dtype) for w in weights]
        pruned = n - sum(int(m.sum()) for m in masks)
        if pruned < target:
            raise SparseModelError(f"sparsity setting: the starting model has {pruned}/{n} zero conv weights, "
                                   f"fewer than the configured sparsity {sparsity} ({target}); {fix}")
    else:
        if len(masks) != len(weights) or any(m.shape != w.shape for m, w in zip(masks, weights)):
            raise SparseModelError(f"sparsity setting: the masks do not fit the model's conv weights; {fix}")
        masks = [m.to(device=w.device, dtype=w.dtype) for m, w in zip(masks, weights)]
        pruned = n - sum(int(m.sum()) for m in masks)
        if pruned != target:
            raise SparseModelError(f"sparsity setting: the sparse baseline prunes {pruned}/{n} conv weights, but "
                                   f"the run is configured for sparsity {sparsity} ({target}); {fix}")
        if any(bool((w.detach()[m == 0] != 0).any()) for w, m in zip(weights, masks)):
            raise SparseModelError(f"sparsity setting: pruned weights of the starting model are non-zero; {fix}")
    return list(zip(weights, masks))


def fix_masks(pairs: list[tuple]):
    """Keep pruned weights at exactly 0: gradient hooks (mask ⊙ grad) and `remask(model)` for after a step
    or a direct write. Returns (remask, remove); call remove() to drop the hooks."""
    handles = [w.register_hook(lambda g, m=m: g * m) for w, m in pairs]

    def remask(_model=None):
        with torch.no_grad():
            for w, m in pairs:
                w.mul_(m)

    def remove():
        for h in handles:
            h.remove()

    return remask, remove


def stored_masks(model, meta: dict) -> list | None:
    """The sparse baseline's masks (checkpoint meta `sparse_masks`) in `conv_weights` order, or None for a
    dense model."""
    stored = meta.get("sparse_masks")
    if stored is None:
        return None
    names = conv_weight_names(model)
    if set(stored) != set(names):
        raise SparseModelError(f"sparse baseline masks name {sorted(stored)}, the model has {names}")
    return [stored[name] for name in names]
