"""IF: one Newton step with the influence function (Koh & Liang 2017; Warnecke et al. 2021; UIB §3.2).

Removing ΔD (random scenario) or replacing its points z by z̃ with the pattern removed (bias scenario):
    θ_new = θ − H⁻¹ · (1/n) [ Σ_{z̃} ∇ℓ(z̃, θ) − Σ_{z ∈ ΔD} ∇ℓ(z, θ) ]
(the z̃ sum is absent for removal). H is the Hessian of the training loss at θ, estimated on retain data
in eval mode; H⁻¹v comes from LiSSA (Agarwal et al. 2017), the recursion of UIB §3.2:
    h_0 = v,  h_j = v + (1 − damping) h_{j−1} − H_j h_{j−1} / scale,   H⁻¹v ≈ h_depth / scale,
with H_j the Hessian on a fresh retain mini-batch. It converges to (H + damping·scale·I)⁻¹ v when
scale exceeds H's largest eigenvalue; `repeats` independent recursions are averaged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ..lazy import lazy_import
from .base import UnlearningMethod, engine, knob, register, torch

F = lazy_import("torch.nn.functional")


def hessian_vector_product(loss, params: Sequence, vector: Sequence) -> list:
    """H·v by double back-propagation (Pearlmutter 1994), H the Hessian of `loss` w.r.t. `params`."""
    grads = torch.autograd.grad(loss, params, create_graph=True)
    return list(torch.autograd.grad(grads, params, grad_outputs=vector))


def lissa_inverse_hvp(batch_loss: Callable, params: Sequence, vector: Sequence, *, damping: float, scale: float,
                      depth: int, repeats: int = 1, log: Callable[[str], None] | None = None) -> list:
    """Estimate H⁻¹v with LiSSA; `batch_loss()` returns the loss on a fresh mini-batch each call."""
    result = [torch.zeros_like(v) for v in vector]
    for repeat in range(repeats):
        estimate = [v.clone() for v in vector]
        for step in range(depth):
            hv = hessian_vector_product(batch_loss(), params, estimate)
            estimate = [v + (1 - damping) * h - hvp / scale for v, h, hvp in zip(vector, estimate, hv)]
            if not all(torch.isfinite(h).all() for h in estimate):
                raise FloatingPointError(f"LiSSA diverged at step {step + 1}: `scale` ({scale}) is below the "
                                         f"Hessian's largest eigenvalue; raise scale (or damping)")
            if log is not None and (step + 1) % max(1, depth // 5) == 0:
                norm = torch.sqrt(sum((h ** 2).sum() for h in estimate)).item()
                log(f"LiSSA repeat {repeat + 1}/{repeats} step {step + 1}/{depth} |h| {norm:.4g}")
        result = [r + h / scale for r, h in zip(result, estimate)]
    return [r / repeats for r in result]


def summed_gradient(model, x, y, params, batch_size: int) -> list:
    """Σ_i ∇ℓ(x_i, y_i) over a set, in eval mode, batched."""
    total = [torch.zeros_like(p) for p in params]
    for idx in engine.batches(len(x), batch_size, shuffle=False, device=x.device):
        loss = F.cross_entropy(model(x[idx]), y[idx], reduction="sum")
        total = [t + g for t, g in zip(total, torch.autograd.grad(loss, params))]
    return total


@register
class InfluenceFunction(UnlearningMethod):
    name = "influence"
    reads = frozenset({"forget", "retain", "forget_counterfactual"})

    @dataclass
    class Knobs:
        damping: float = knob(0.01, low=0.0, high=1.0, help="LiSSA damping d: effective λ = d·scale")
        scale: float = knob(1000.0, low=0.0, low_open=True, help="LiSSA scale: must exceed H's top eigenvalue")
        depth: int = knob(100, low=1, help="LiSSA recursion steps")
        repeats: int = knob(1, low=1, help="independent LiSSA estimates averaged")
        batch_size: int = knob(128, low=1, help="retain mini-batch for each Hessian-vector product")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        model.eval()  # the Hessian of a fixed function: batch-norm uses its running statistics
        params = [p for p in model.parameters() if p.requires_grad]
        x_f, y_f = data.forget
        delta = [-g for g in summed_gradient(model, x_f, y_f, params, k.batch_size)]
        if data.forget_counterfactual is not None:
            x_cf, y_cf = data.forget_counterfactual
            delta = [d + g for d, g in zip(delta, summed_gradient(model, x_cf, y_cf, params, k.batch_size))]
        delta = [d / data.n_train for d in delta]
        x_r, y_r = data.retain

        def retain_batch_loss():
            idx = torch.randint(0, len(x_r), (min(k.batch_size, len(x_r)),), generator=ctx.generator)
            idx = idx.to(x_r.device)
            return F.cross_entropy(model(x_r[idx]), y_r[idx])

        step = lissa_inverse_hvp(retain_batch_loss, params, delta, damping=k.damping, scale=k.scale,
                                 depth=k.depth, repeats=k.repeats, log=ctx.log)
        with torch.no_grad():
            for p, s in zip(params, step):
                p.sub_(s)
        ctx.iteration(model)
