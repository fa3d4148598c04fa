"""BDSH: Boundary Shrinking, "Boundary Unlearning" (Chen, Gao, Zhou, Ren, Wang & Huang, CVPR 2023), zero-shot.

Reference: TY-LEE-KR/Boundary-Unlearning-Code @ 19f9f23 (an upload of the authors' code archive),
boundary_unlearning.py `boundary_shrink` with adv_generator.py `FGSM` (the default path: `extra_exp=None`). How JiT
ran it is not public. For every mini-batch (x, y) of the forget set (64, reshuffled every pass, `epochs` = 10
passes):

    x_adv = clip_[0,1]( x + b · sign ∇_x CE(f₀(x), y) ), rounded to 1/255     one FGSM step, in pixel space
    ŷ     = argmax f₀(x_adv)                                                   the nearest other class
    θ ← SGD step on CE(f_θ(x), ŷ)                                              (lr 1e-5, momentum 0.9)

f₀ is a frozen copy of the original model in eval mode (the neighbour search always uses the original), f_θ the
model in train mode (`mode`; eval keeps batch-norm statistics); b = 0.1. ŷ may equal y where the attack fails (as in the reference). The reference
de-normalises with hard-coded CIFAR-10 statistics (with a typo, mean 0.2265 for blue) whatever the data's
normalisation was; ours takes pixels as the data are stored (uint8 / 255) and the model's own normalisation, i.e.
the attack as meant: with a model that takes [0, 1] pixels the two agree exactly (benchmarks/reference_baselines.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.lazy import lazy_import
from .base import UnlearningMethod, engine, frozen_copy, knob, register, torch

F = lazy_import("torch.nn.functional")


def fgsm_neighbours(model, x_pixels, y, bound: float):
    """(x_adv in [0, 1] pixels, argmax of the model there): one signed-gradient step of size `bound` up the
    cross-entropy of the true label, clipped to the ±bound box and to [0, 1], rounded to 1/255."""
    x_nat = x_pixels.detach()
    x_adv = x_nat.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x_adv * 255.0), y)
    grad, = torch.autograd.grad(loss, x_adv)
    x_adv = x_nat + grad.sign() * bound
    x_adv = x_nat + torch.clamp(x_adv - x_nat, -bound, bound)
    x_adv = torch.round(torch.clamp(x_adv, 0.0, 1.0) * 255) / 255
    with torch.no_grad():
        return x_adv, model(x_adv * 255.0).argmax(1)


@register
class BoundaryShrink(UnlearningMethod):
    name = "boundary_shrink"
    reads = frozenset({"forget"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): around the authors' lr 1e-5, bound 0.1, 10 epochs
    search_space = {"lr": {"low": 1.0e-6, "high": 1.0e-2, "log": True}, "bound": {"low": 0.01, "high": 0.5, "log": True}, "epochs": {"low": 1, "high": 20}}

    @dataclass
    class Knobs:
        bound: float = knob(0.1, low=0.0, low_open=True, help="FGSM step and L∞ bound, pixel units (reference: 0.1)")
        epochs: int = knob(10, low=1, help="passes over the forget set (reference: poison_epoch 10)")
        batch_size: int = knob(64, low=1, help="reference: 64")
        lr: float = knob(1e-5, low=0.0, low_open=True, help="SGD learning rate (reference: 1e-5)")
        momentum: float = knob(0.9, low=0.0, high=1.0, help="reference: 0.9")
        mode: str = knob("train", choices=("train", "eval"),
                         help="mode of the model being updated (reference: train; eval keeps batch-norm statistics)")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x_f, y_f = data.forget
        original = frozen_copy(model)
        optimizer = engine.SGD(model.parameters(), lr=k.lr, momentum=k.momentum)
        for epoch in range(k.epochs):
            flipped, seen = 0, 0
            for idx in engine.batches(len(x_f), k.batch_size, ctx.generator, device=x_f.device):
                x, y = x_f[idx], y_f[idx]
                _, nearest = fgsm_neighbours(original, x.float() / 255.0, y, k.bound)
                flipped += int((nearest != y).sum())
                seen += len(y)
                model.train(k.mode == "train")
                loss = F.cross_entropy(model(x), nearest)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            ctx.log(f"boundary shrink: epoch {epoch + 1}/{k.epochs} attack moved {flipped}/{seen} forget samples "
                    f"to another class; last loss {loss.item():.4f}")
            ctx.iteration(model)
