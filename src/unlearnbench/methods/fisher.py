"""Fisher forgetting (Golatkar, Achille & Soatto, "Eternal Sunshine of the Spotless Net", CVPR 2020, §4 Eq. 8
"Fisher forgetting"), as implemented in Unlearn-Sparse (Jia, Liu et al. 2023, unlearn/fisher.py):

    F_i = (1/|D_r|) Σ_{(x,y)∈D_r} (∂ log p_θ(y|x) / ∂θ_i + ε)²                 (diagonal empirical Fisher)
    θ_i ← θ_i + min(√(α / F_i), clip) · n_i,   n_i ~ N(0, 1)                    (noise N(0, α F⁻¹), clipped)

ε = 1e-8 and clip = 1e-3 as there; parameters whose last dimension equals the number of classes (the
classifier's bias, as their `parameter.shape[-1] == 10` test) get `head_multiplier` (10) × the noise.
The model is in eval mode (their fisher_information_martix). Per-sample gradients with torch.func.vmap.
α default 0.2 is the Unlearn-Sparse arg_parser default (their README passes ${alpha}).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.lazy import lazy_import
from .base import UnlearningMethod, engine, knob, register, torch

F = lazy_import("torch.nn.functional")
func = lazy_import("torch.func")


def diagonal_fisher(model, x, y, n_classes: int, batch_size: int, eps: float = 1e-8) -> dict:
    """Mean over samples of (∇ log p(y|x) + ε)², per named parameter (model in eval mode)."""
    model.eval()
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def log_prob(p, xi, yi):
        out = func.functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return (F.log_softmax(out, dim=-1)[0] * yi).sum()  # yi: one-hot row

    per_sample = func.vmap(func.grad(log_prob), in_dims=(None, 0, 0))
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    for idx in engine.batches(len(x), batch_size, shuffle=False, device=x.device):
        onehot = F.one_hot(y[idx], n_classes).to(torch.float32)
        g = per_sample(params, x[idx], onehot)
        for n in fisher:
            fisher[n] += ((g[n] + eps) ** 2).sum(0)
    return {n: f / len(x) for n, f in fisher.items()}


@register
class FisherForgetting(UnlearningMethod):
    name = "fisher"
    reads = frozenset({"retain"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): α log around Unlearn-Sparse's 0.2 (Deep Unlearn tunes α)
    search_space = {"alpha": {"low": 1.0e-3, "high": 1.0, "log": True}}

    @dataclass
    class Knobs:
        alpha: float = knob(0.2, low=0.0, low_open=True, help="α: noise variance scale α·F⁻¹")
        clip: float = knob(1e-3, low=0.0, low_open=True, help="upper clip on the noise std √(α/F)")
        head_multiplier: float = knob(10.0, low=0.0, help="noise × this on parameters of last dim n_classes")
        batch_size: int = knob(128, low=1, help="per-sample-gradient chunk")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x, y = data.retain
        fisher = diagonal_fisher(model, x, y, data.n_classes, k.batch_size)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name not in fisher:
                    continue
                std = torch.sqrt(k.alpha / fisher[name]).clamp(max=k.clip)
                noise = std * torch.randn(p.shape, generator=ctx.generator).to(p.device)
                if p.shape[-1] == data.n_classes:
                    noise = noise * k.head_multiplier
                p.add_(noise)
        ctx.iteration(model)
