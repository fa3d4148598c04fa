"""IF: one Newton step with the influence function (Koh & Liang 2017; Warnecke et al. 2021; UIB §3.2).

Removing ΔD (random scenario) or replacing its points z by z̃ with the pattern removed (bias scenario):
    θ_new = θ − H⁻¹ · (1/n) [ Σ_{z̃} ∇ℓ(z̃, θ) − Σ_{z ∈ ΔD} ∇ℓ(z, θ) ]
(the z̃ sum is absent for removal). H is the Hessian of the training loss at θ, estimated on retain data
in eval mode; H⁻¹v comes from LiSSA (Agarwal et al. 2017), the recursion of UIB §3.2:
    h_0 = v,  h_j = v + (1 − damping) h_{j−1} − H_j h_{j−1} / scale,   H⁻¹v ≈ h_depth / scale,
with H_j the Hessian on a fresh retain mini-batch. It converges to (H + damping·scale·I)⁻¹ v when
scale exceeds H's largest eigenvalue and damping·scale exceeds |H's most negative eigenvalue|, at the rate
max_i |1 − damping − λ_i/scale| per step (≈ 1 − damping in the flat directions, so depth ≳ 5/damping);
`repeats` independent recursions are averaged. `scale: 0` (default) sets scale = 1.2 × H's largest eigenvalue,
estimated by power iteration on a fixed retain sample: the damped step then has λ = damping·scale ≈ 1.2% of the top
curvature, a lightly damped Newton step (docs/methods.md, IF, for the measurement against exact solves).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ..core.lazy import lazy_import
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


def top_eigenvalue(loss, params: Sequence, generator, iters: int) -> float:
    """H's largest eigenvalue by power iteration (Rayleigh quotient), H the Hessian of `loss()` (a fixed batch)."""
    u = [torch.randn(p.shape, generator=generator).to(p.device) for p in params]
    value = 0.0
    for _ in range(iters):
        norm = torch.sqrt(sum((t ** 2).sum() for t in u))
        u = [t / norm for t in u]
        hu = hessian_vector_product(loss(), params, u)
        value = float(sum((a * b).sum() for a, b in zip(u, hu)))
        u = [t.detach() for t in hu]
    return value


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

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): LiSSA's damping, log around the default grid 0.2-0.8, up to its bound 1
    search_space = {"damping": {"low": 0.05, "high": 1.0, "log": True}}

    @dataclass
    class Knobs:
        damping: float = knob(0.01, low=0.0, high=1.0, help="LiSSA damping d: effective λ = d·scale")
        scale: float = knob(0.0, low=0.0, help="LiSSA scale: must exceed H's top eigenvalue; 0: 1.2 × that "
                                               "eigenvalue, estimated by power iteration")
        depth: int = knob(1000, low=1, help="LiSSA recursion steps (converged after ≈ 5/damping)")
        repeats: int = knob(1, low=1, help="independent LiSSA estimates averaged")
        batch_size: int = knob(128, low=1, help="retain mini-batch for each Hessian-vector product")
        power_iters: int = knob(20, low=1, help="power-iteration steps of the automatic scale")
        power_sample: int = knob(1024, low=1, help="retain points (fixed, drawn once) of the automatic scale's H")

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

        scale = k.scale
        if scale == 0:
            sample = torch.randperm(len(x_r), generator=ctx.generator)[:k.power_sample].to(x_r.device)
            top = top_eigenvalue(lambda: F.cross_entropy(model(x_r[sample]), y_r[sample]), params, ctx.generator,
                                 k.power_iters)
            if not top > 0:
                raise FloatingPointError(f"influence: the retain Hessian's top eigenvalue estimate is {top}; set "
                                         f"`scale` by hand")
            scale = 1.2 * top
            ctx.log(f"LiSSA scale {scale:.4g} = 1.2 × top Hessian eigenvalue {top:.4g} (power iteration, "
                    f"{len(sample)} retain points); damped step λ = {k.damping * scale:.4g}")
        step = lissa_inverse_hvp(retain_batch_loss, params, delta, damping=k.damping, scale=scale,
                                 depth=k.depth, repeats=k.repeats, log=ctx.log)
        with torch.no_grad():
            for p, s in zip(params, step):
                p.sub_(s)
        ctx.iteration(model)
