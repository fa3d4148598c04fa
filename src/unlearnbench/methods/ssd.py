"""SSD: Selective Synaptic Dampening (Foster, Schoepf & Brintrup, AAAI 2024), as its authors' code runs it.

Reference: if-loops/selective-synaptic-dampening @ cdfdc0e, src/ssd.py `ParameterPerturber.calc_importance` /
`modify_weight` (the copy in jwf40/Information-Theoretic-Unlearning @ c967614, src/ssd.py, is the same code), driven
by `ssd_tuning` in JiT's src/forget_*_strategies.py. Model in eval mode. The importance of every parameter element
over a set S cut into mini-batches B_1..B_m is the mean squared mini-batch gradient (the reference squares the
gradient of each batch's mean cross-entropy, not per-sample gradients):

    I_S(θ) = (1/m) Σ_b (∂ ℓ̄(B_b) / ∂θ)²

with S = D_f (in order) and S = D = D_r ∪ D_f (full class: a shuffled copy of the training set; sub-class and
random: retain then forget, in order). Then for every element with I_f > α·I_D:

    θ ← θ · min(λ·I_D / I_f, 1)

No training. α = `alpha` ("selection_weighting"), λ = `dampening` ("dampening_constant"); the reference's exponent
and lower bound are 1. Defaults: the SSD paper's λ = 1, α = 10; JiT's scripts pass (λ, α) = (1, 1) full class,
(6, 5) sub-class, (4, 10) random for VGG — configs set them per scenario (docs/methods.md).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.lazy import lazy_import
from .base import UnlearningMethod, engine, knob, register, torch

F = lazy_import("torch.nn.functional")


def importance(model, x, y, batch_size: int, generator=None, shuffle: bool = False) -> dict:
    """{parameter name: mean over mini-batches of the squared gradient of the batch's mean cross-entropy}."""
    params = dict(model.named_parameters())
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    n_batches = 0
    for idx in engine.batches(len(x), batch_size, generator, shuffle=shuffle, device=x.device):
        for p in params.values():
            p.grad = None
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        for name, p in params.items():
            if p.grad is not None:
                total[name] += p.grad.pow(2)
        n_batches += 1
    for p in params.values():
        p.grad = None
    return {name: imp / float(n_batches) for name, imp in total.items()}


def dampen(model, full_importance: dict, forget_importance: dict, alpha: float, dampening: float) -> int:
    """θ ← θ·min(λ·I_D/I_f, 1) where I_f > α·I_D; returns the number of dampened elements."""
    changed = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            i_d, i_f = full_importance[name], forget_importance[name]
            where = i_f > i_d * alpha
            factor = (i_d * dampening / i_f)[where].clamp(max=1.0)
            p[where] = p[where] * factor
            changed += int(where.sum())
    return changed


@register
class SSD(UnlearningMethod):
    name = "ssd"
    reads = frozenset({"forget", "retain"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): α, λ log a decade around JiT's scripts (α 1-10, λ 1-6)
    search_space = {"alpha": {"low": 0.1, "high": 100.0, "log": True}, "dampening": {"low": 0.1, "high": 10.0, "log": True}}

    @dataclass
    class Knobs:
        alpha: float = knob(10.0, low=0.0, help="α, selection weighting (SSD paper: 10)")
        dampening: float = knob(1.0, low=0.0, low_open=True, help="λ, dampening constant (SSD paper: 1)")
        batch_size: int = knob(128, low=1, help="mini-batch of the importances (JiT: 128; sub-class 64)")
        shuffle_full: bool = knob(True, help="shuffle D for I_D (JiT full class: yes; sub-class / random: no)")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x_f, y_f = data.forget
        x_r, y_r = data.retain
        model.eval()
        forget_imp = importance(model, x_f, y_f, k.batch_size)
        full_imp = importance(model, torch.cat([x_r, x_f]), torch.cat([y_r, y_f]), k.batch_size, ctx.generator,
                              shuffle=k.shuffle_full)
        changed = dampen(model, full_imp, forget_imp, k.alpha, k.dampening)
        total = sum(p.numel() for p in model.parameters())
        ctx.log(f"ssd: dampened {changed}/{total} parameter elements (alpha {k.alpha}, lambda {k.dampening})")
        ctx.iteration(model)
