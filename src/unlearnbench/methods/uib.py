"""UIB setting: the Unlearning Information Bottleneck (Han et al., UIB §3, Eq. 2, Prop. 1, Algorithm 1) around
FT, SR (fisher_new; also SCRUB) or IF, with S_θ = {L−1}, S_R = [L] (Table 3):

      min  CE_retain(θ)                                        (−I(Y; θ^(L)) lower bound, Q1 = softmax)
         + β · ½‖θ^(L−1) − θ₀^(L−1)‖²                          (UIB_θ^(L−1): Gaussian P vs Gaussian Q at θ₀)
         + β · Σ_{l∈[L]} R^(l),  R^(l) = ‖∇_{θ^(l)} ℓ_KL(θ)‖²   (UIB_R^(l): the paper's ‖z_KL, θ^(l)‖²)

with ℓ_KL the pattern points' loss: mean[ℓ(z̃) − ℓ(z)] with counterfactuals z̃ (bias scenario), else mean ℓ(z)
(removal). Only parameters influenced by z_KL are updated: score s = |∇_θ ℓ_KL| (first-order influence,
I_up,params with H ≈ I), normalised per tensor by its mean (s̃ = s / mean s); eligible iff s̃ ≥ τ; the update mask
is drawn among eligible entries by Bernoulli(min(1, s̃)) or by k·numel categorical draws with replacement ∝ s
(UIB §3.2), redrawn at every unlearning iteration l. The inner method's updates go through a gradient mask hook;
after every iteration (Algorithm 1, "Regularize update") one pass of gradient steps on the full bound above is
taken over the pattern points (paired with retain batches), restricted to the same mask.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..core.lazy import lazy_import
from .base import Wrapper, engine, knob, register, torch

F = lazy_import("torch.nn.functional")
nn = lazy_import("torch.nn")


def parameter_layers(model) -> list[list]:
    """θ^(1..L): each conv or linear layer's parameters together with the batch-norm right after it."""
    layers: list[list] = []
    for m in model.modules():
        own = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and layers:
            layers[-1].extend(own)
        else:
            layers.append(own)
    return layers


def pattern_loss(model, data, idx):
    """ℓ_KL on pattern points idx: mean[ℓ(z̃) − ℓ(z)] with counterfactuals, else mean ℓ(z)."""
    x, y = data.forget
    loss = -F.cross_entropy(model(x[idx]), y[idx]) if data.forget_counterfactual is not None \
        else F.cross_entropy(model(x[idx]), y[idx])
    if data.forget_counterfactual is not None:
        xc, yc = data.forget_counterfactual
        loss = loss + F.cross_entropy(model(xc[idx]), yc[idx])
    return loss


def influence_scores(model, data, params, batch_size: int) -> list:
    """|∇_θ ℓ_KL| over all pattern points (first-order influence of z_KL on every parameter)."""
    n = len(data.forget[0])
    total = [torch.zeros_like(p) for p in params]
    for idx in engine.batches(n, batch_size, shuffle=False, device=data.forget[0].device):
        grads = torch.autograd.grad(pattern_loss(model, data, idx) * len(idx), params, allow_unused=True)
        total = [t + (g if g is not None else 0) for t, g in zip(total, grads)]
    return [(t / n).abs() for t in total]


def sample_masks(scores: list, knobs, generator) -> list:
    masks = []
    for s in scores:
        mean = s.mean()
        rel = s / mean if mean > 0 else torch.zeros_like(s)
        eligible = rel >= knobs.tau
        if knobs.sampling == "bernoulli":
            u = torch.rand(s.shape, generator=generator).to(s.device)
            mask = eligible & (u < rel.clamp(max=1.0))
        else:
            weights = (s * eligible).flatten().float()
            mask = torch.zeros(s.numel(), dtype=torch.bool, device=s.device)
            if weights.sum() > 0:
                draws = max(1, math.ceil(knobs.k * s.numel()))
                picked = torch.multinomial(weights.cpu(), draws, replacement=True, generator=generator)
                mask[picked.to(s.device)] = True
            mask = mask.view_as(s)
        masks.append(mask.to(s.dtype))
    return masks


def uib_penalty(model, data, idx_f, layer_prev: list, anchor: list, params, beta: float):
    """β·[½‖θ^(L−1) − θ₀^(L−1)‖² + Σ_l ‖∇_{θ^(l)} ℓ_KL‖²] (the I(X; θ^(L)) upper bound of Proposition 1).

    The gradient-norm term R^(l) needs a counterfactual z̃ (bias scenario). In removal (no z̃) it is left out:
    there ℓ_KL = ℓ(z) and ‖∇ℓ(z)‖² is smallest where the model fits z (≈ 0 at the original model), so it
    would pull the model back toward memorising the forget set, against the unlearning it regularises; with
    SR's max step raising ℓ(z) it grew 10× per iteration and its descent step collapsed the model (an earlier version,
    docs/methods.md)."""
    kl = 0.5 * sum(((p - a) ** 2).sum() for p, a in zip(layer_prev, anchor))
    if data.forget_counterfactual is None:
        return beta * kl
    grads = torch.autograd.grad(pattern_loss(model, data, idx_f), params, create_graph=True, allow_unused=True)
    r = sum((g ** 2).sum() for g in grads if g is not None)
    return beta * (kl + r)


def regularisation_step(objective: Callable, params, masks, lr: float, max_halvings: int = 10) -> float:
    """One masked descent step θ ← θ − λ·M⊙∇f on f = `objective()` with Armijo backtracking: λ starts at `lr`
    and is halved until f(θ − λ·M⊙∇f) ≤ f(θ) − ½·λ·‖M⊙∇f‖² (the sufficient-decrease condition); no step if
    none of `max_halvings` halvings decreases f. Algorithm 1's fixed-λ step is the first trial; the search only
    shortens it where the objective's curvature makes a fixed step ascend (a squared gradient norm has a
    gradient that grows with the curvature). Returns the step taken (0.0 for none)."""
    f0 = objective()
    grads = torch.autograd.grad(f0, params, allow_unused=True)
    direction = [(g * m if g is not None else None) for g, m in zip(grads, masks)]
    sq = sum(float((d ** 2).sum()) for d in direction if d is not None)
    f0 = float(f0.detach())
    if sq == 0.0 or not math.isfinite(f0):
        return 0.0
    start = [p.detach().clone() for p in params]
    step = lr
    for _ in range(max_halvings + 1):
        with torch.no_grad():
            for p, p0, d in zip(params, start, direction):
                if d is not None:
                    p.copy_(p0 - step * d)
        f1 = float(objective().detach())
        if math.isfinite(f1) and f1 <= f0 - 0.5 * step * sq:
            return step
        step /= 2
    with torch.no_grad():
        for p, p0 in zip(params, start):
            p.copy_(p0)
    return 0.0


class _Bottleneck:
    """The state of one UIB run: the current update mask, the frozen values outside it, and the hooks that apply
    it (a gradient mask for the inner method's updates, a projection before every forward pass)."""

    def __init__(self, knobs, model, data, ctx):
        self.knobs, self.model, self.data, self.ctx = knobs, model, data, ctx
        self.params = [p for p in model.parameters() if p.requires_grad]
        layers = parameter_layers(model)
        self.layer_prev = layers[-2] if len(layers) >= 2 else layers[-1]  # S_θ = {L−1}
        self.anchor = [p.detach().clone() for p in self.layer_prev]
        self.was_training = model.training
        self.masks: list = []
        self.frozen: list = []
        self.versions: list | None = None
        self.active = False
        self.handles: list = []
        self.drop_hook = None

    def resample(self) -> None:
        """Draw the update mask from the influence scores at the current parameters."""
        self.model.eval()
        scores = influence_scores(self.model, self.data, self.params, self.knobs.batch_size)
        self.masks = sample_masks(scores, self.knobs, self.ctx.generator)
        self.frozen = [q.detach().clone() for q in self.params]
        kept = sum(float(m.sum()) for m in self.masks)
        self.ctx.log(f"uib: {kept:.0f}/{sum(m.numel() for m in self.masks)} parameters sampled for update")

    def project(self, *_args) -> None:
        """Parameters outside the sample keep their value: undoes what the optimiser applies outside the gradient
        (L2 weight decay, momentum carried over from an earlier mask). Runs before a forward pass only when a
        parameter was written since the last projection (i.e. after an optimiser step), so a graph built by an
        earlier forward of the same step is never invalidated."""
        versions = [q._version for q in self.params]
        if self.versions == versions:
            return
        with torch.no_grad():
            for q, m, f in zip(self.params, self.masks, self.frozen):
                q.copy_(torch.where(m.bool(), q, f))
        self.versions = [q._version for q in self.params]

    def regularise(self, model) -> None:
        """Algorithm 1's regularisation step after an iteration: descent on the full bound over the pattern points,
        masked; then a new mask for the next iteration."""
        self.project()
        self.active = False  # R^(l) is the gradient norm over every parameter, not just the sampled
        k = self.knobs
        if k.reg_lr > 0:
            training = model.training
            model.eval()
            x_f = self.data.forget[0]
            x_r, y_r = self.data.retain
            steps = []
            for idx_f in engine.batches(len(x_f), k.batch_size, self.ctx.generator, device=x_f.device):
                idx_r = torch.randint(0, len(x_r), (min(k.batch_size, len(x_r)),),
                                      generator=self.ctx.generator).to(x_r.device)

                def objective(idx_f=idx_f, idx_r=idx_r):
                    return F.cross_entropy(model(x_r[idx_r]), y_r[idx_r]) + \
                        uib_penalty(model, self.data, idx_f, self.layer_prev, self.anchor, self.params, k.beta)

                steps.append(regularisation_step(objective, self.params, self.masks, k.reg_lr))
            model.train(training)
            self.ctx.log(f"uib: regularisation steps {', '.join(f'{st:.3g}' for st in steps)} (reg_lr {k.reg_lr})")
        self.resample()
        self.active = True
        model.train(self.was_training)

    def __enter__(self):
        self.resample()
        self.active = True
        self.model.train(self.was_training)
        self.handles = [p.register_hook(lambda g, i=i: g * self.masks[i] if self.active else g)
                        for i, p in enumerate(self.params)]
        self.handles.append(self.model.register_forward_pre_hook(self.project))
        self.drop_hook = self.ctx.before_iteration(self.regularise)
        return self

    def __exit__(self, *exc):
        self.drop_hook()
        for h in self.handles:
            h.remove()
        self.project()


@register
class UIB(Wrapper):
    name = "uib"
    own_reads = frozenset({"forget", "retain", "forget_counterfactual"})
    # UIB Table 1: FT, SR (Fisher scrubbing: fisher_new), IF; and SCRUB, the project's earlier SR
    supports = frozenset({"finetune", "fisher_new", "influence", "scrub"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): UIB Table 3's β ∈ {0.01, 0.05, 0.1}, τ ∈ {0.05, 0.1, 1} as log ranges
    search_space = {"setting_knobs": {"beta": {"low": 0.01, "high": 0.1, "log": True}, "tau": {"low": 0.05, "high": 1.0, "log": True}}}

    @dataclass
    class Knobs:
        beta: float = knob(0.01, low=0.0, help="β of Eq. 2; Table 3 searches {0.1, 0.01, 0.05}")
        tau: float = knob(0.1, low=0.0, help="τ: eligible iff influence ≥ τ·(mean influence of its tensor); "
                                             "Table 3 searches {0.05, 0.1, 1}")
        sampling: str = knob("bernoulli", choices=("bernoulli", "categorical"), help="UIB §3.2")
        k: float = knob(0.5, low=0.0, low_open=True, help="categorical draws per tensor, as a fraction of its size")
        reg_lr: float = knob(0.01, low=0.0, help="λ of Algorithm 1's regularisation step (0 disables it)")
        batch_size: int = knob(256, low=1, help="pattern-point batch (Table 3: 256)")

    def unlearn(self, model, data, ctx):
        with _Bottleneck(self.knobs, model, data, ctx):
            self.run_inner(model, data, ctx)
