"""Settings: how a method runs. `standard` (the method alone), `sparsity` (Jia, Liu et al. 2023) and
`uib` (the Unlearning Information Bottleneck, UIB §3). See docs/methods.md for every equation and choice.

A setting wraps `method.unlearn(model, data, ctx)`; the runner calls

    apply_setting(setting, setting_knobs, model, method, inputs, ctx)

with `inputs` holding the union of what the method declared and what the setting declares
(`setting_reads`). The method itself is always handed only the fields it declared (the others None).

sparsity: Unlearn-Sparse's pipeline (prune → retrain sparse → unlearn). The pruning and the retraining
    happen upstream, once per (dataset, seed, sparsity): `runner.train_sparse_baseline` prunes the dense
    baseline one-shot (global magnitude, L1 unstructured, every conv weight) to `sparsity` and retrains the
    sparse model on the full training set with the mask fixed (`fix_masks` during `engine.train`), saving the
    masks in the checkpoint. The setting itself only keeps that mask fixed during unlearning: a gradient hook
    multiplies each pruned tensor's gradient by the mask (so under engine.SGD, with momentum and L2 weight
    decay, a pruned weight receives an exactly-zero update at every step and stays exactly 0.0), and the
    weights are re-masked after every unlearning iteration and at the end (for methods that write weights
    directly, e.g. Fisher noise). LiSSA's Hessian-vector products also pass through the hook, so IF solves
    the Newton step restricted to the surviving sub-network. It never prunes.

uib: the UIB objective (Eq. 2) with Proposition 1's bound, S_θ = {L−1}, S_R = [L] (Table 3):
      min  CE_retain(θ)                                        (−I(Y; θ^(L)) lower bound, Q1 = softmax)
         + β · ½‖θ^(L−1) − θ₀^(L−1)‖²                          (UIB_θ^(L−1): Gaussian P vs Gaussian Q at θ₀)
         + β · Σ_{l∈[L]} R^(l),  R^(l) = ‖∇_{θ^(l)} ℓ_KL(θ)‖²   (UIB_R^(l): the paper's ‖z_KL, θ^(l)‖²)
    with ℓ_KL the pattern points' loss: mean[ℓ(z̃) − ℓ(z)] with counterfactuals z̃ (bias scenario), else
    mean ℓ(z) (removal). Only parameters influenced by z_KL are updated: score s = |∇_θ ℓ_KL| (first-order
    influence, I_up,params with H ≈ I), normalised per tensor by its mean (s̃ = s / mean s); eligible iff
    s̃ ≥ τ; the update mask is drawn among eligible entries by Bernoulli(min(1, s̃)) or by k·numel categorical
    draws with replacement ∝ s (UIB §3.2), redrawn at every unlearning iteration l. The method's own updates
    go through a gradient mask hook; after every iteration (Algorithm 1, "Regularize update") one pass of
    gradient steps on the full bound above is taken over the pattern points (paired with retain batches),
    restricted to the same mask.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .base import ConfigError, UnlearnContext, UnlearnData, knob, make_knobs_for

SETTINGS = ("standard", "sparsity", "uib")
UIB_METHODS = frozenset({"finetune", "scrub", "influence"})


@dataclass
class StandardKnobs:
    pass


@dataclass
class SparsityKnobs:
    sparsity: float = knob(0.95, low=0.0, high=1.0, low_open=True,
                           help="share of conv weights pruned (global magnitude, Unlearn-Sparse: 95%)")


@dataclass
class UIBKnobs:
    beta: float = knob(0.01, low=0.0, help="β of Eq. 2; Table 3 searches {0.1, 0.01, 0.05}")
    tau: float = knob(0.1, low=0.0, help="τ: eligible iff influence ≥ τ·(mean influence of its tensor); "
                                         "Table 3 searches {0.05, 0.1, 1}")
    sampling: str = knob("bernoulli", help="bernoulli | categorical (UIB §3.2)")
    k: float = knob(0.5, low=0.0, low_open=True, help="categorical draws per tensor, as a fraction of its size")
    reg_lr: float = knob(0.01, low=0.0, help="λ of Algorithm 1's regularisation step (0 disables it)")
    batch_size: int = knob(256, low=1, help="pattern-point batch (Table 3: 256)")


SETTING_KNOBS = {"standard": StandardKnobs, "sparsity": SparsityKnobs, "uib": UIBKnobs}


def setting_reads(setting: str) -> frozenset[str]:
    """Data the setting itself needs besides what the method declared."""
    if setting == "uib":
        return frozenset({"forget", "retain", "forget_counterfactual"})
    return frozenset()


def make_setting_knobs(setting: str, values: dict | None, where: str, method: str | None = None):
    """Validate a run's `setting` and `setting_knobs` (ConfigError naming the key)."""
    if setting not in SETTING_KNOBS:
        raise ConfigError(f"{where}.setting: unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    if setting == "uib" and method is not None and method not in UIB_METHODS:
        raise ConfigError(f"{where}.setting: the uib setting is defined for {', '.join(sorted(UIB_METHODS))} "
                          f"(UIB Table 1: FT, SR, IF), not for {method!r}")
    knobs = make_knobs_for(SETTING_KNOBS[setting], dict(values or {}), f"{where}.setting_knobs",
                           f"setting {setting!r}")
    if setting == "uib" and knobs.sampling not in ("bernoulli", "categorical"):
        raise ConfigError(f"{where}.setting_knobs.sampling: expected bernoulli or categorical, "
                          f"got {knobs.sampling!r}")
    return knobs


def restrict(data: UnlearnData, reads) -> UnlearnData:
    """A copy of `data` with only the declared fields (the others None)."""
    return UnlearnData(**{f.name: (getattr(data, f.name) if f.name in reads or f.name in ("n_train", "n_classes")
                                   else None) for f in dataclasses.fields(UnlearnData)})


class _HookedContext:
    """The runner's context, with `before_iteration(model)` run first at every iteration; that time counts
    as unlearning time (only the runner's own probe is excluded)."""

    def __init__(self, inner: UnlearnContext, before_iteration: Callable[[nn.Module], None]):
        self._inner = inner
        self._before = before_iteration
        self.device, self.generator, self.log = inner.device, inner.generator, inner.log

    @property
    def iterations(self):
        return self._inner.iterations

    @property
    def excluded_seconds(self):
        return self._inner.excluded_seconds

    def iteration(self, model):
        self._before(model)
        self._inner.iteration(model)


def apply_setting(setting: str, knobs, model: nn.Module, method, data: UnlearnData, ctx: UnlearnContext,
                  masks: list[torch.Tensor] | None = None) -> None:
    """Run `method` on `model` in `setting` (knobs: a validated setting-knobs object or a dict).

    masks (sparsity only): the sparse baseline's pruning masks, one per conv weight in module order
    (`conv_weights`); None recovers them from the model's exact zeros. The model must already be pruned to
    the configured sparsity (the sparse baseline, `runner.train_sparse_baseline`): the setting never prunes."""
    if isinstance(knobs, dict) or knobs is None:
        knobs = make_setting_knobs(setting, knobs, "setting", getattr(method, "name", None))
    method_data = restrict(data, method.reads)
    if setting == "standard":
        method.unlearn(model, method_data, ctx)
    elif setting == "sparsity":
        _run_sparse(knobs, model, method, method_data, ctx, masks)
    elif setting == "uib":
        _run_uib(knobs, model, method, data, method_data, ctx)
    else:
        raise ConfigError(f"setting: unknown setting {setting!r}")


# ---------------------------------------------------------------------------------------------- sparsity

def conv_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def conv_weight_names(model: nn.Module) -> list[str]:
    """state_dict keys of `conv_weights(model)`, in the same order."""
    return [f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


@torch.no_grad()
def global_magnitude_masks(weights: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Masks pruning exactly round(sparsity·N) of the N weights with the smallest |w| (ties by position)."""
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


def prune_model(model: nn.Module, sparsity: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One-shot global magnitude pruning of conv weights; returns (weight, mask) pairs, weights masked."""
    weights = conv_weights(model)
    masks = global_magnitude_masks(weights, sparsity)
    with torch.no_grad():
        for w, m in zip(weights, masks):
            w.mul_(m)
    return list(zip(weights, masks))


class SparseModelError(ValueError):
    """The starting model of a sparsity run is not the sparse baseline it should be."""


def model_masks(model: nn.Module, masks: list[torch.Tensor] | None, sparsity: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(conv weight, mask) pairs of an already pruned model, checked against the configured sparsity.

    Explicit masks (from the sparse baseline's checkpoint) must prune exactly round(sparsity·N) of the N conv
    weights, and the model's pruned weights must be 0; without masks they are recovered from the exact zeros
    (then at least round(sparsity·N) must be zero)."""
    weights = conv_weights(model)
    n = sum(w.numel() for w in weights)
    target = int(round(sparsity * n))
    fix = ("run sparsity-setting methods from the sparse baseline (rule sparse_baseline, "
           "runner.train_sparse_baseline), which prunes and retrains the dense model with the mask fixed")
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


def fix_masks(pairs: list[tuple[torch.Tensor, torch.Tensor]]):
    """Keep pruned weights at exactly 0: gradient hooks (mask ⊙ grad) and `remask(model)` for after a step
    or a direct write. Returns (remask, remove) ; call remove() to drop the hooks."""
    handles = [w.register_hook(lambda g, m=m: g * m) for w, m in pairs]

    @torch.no_grad()
    def remask(_model=None):
        for w, m in pairs:
            w.mul_(m)

    def remove():
        for h in handles:
            h.remove()

    return remask, remove


def _run_sparse(knobs: SparsityKnobs, model, method, method_data, ctx, masks=None):
    pairs = model_masks(model, masks, knobs.sparsity)
    kept = sum(int(m.sum()) for _, m in pairs)
    total = sum(m.numel() for _, m in pairs)
    ctx.log(f"sparsity: starting from the sparse baseline, conv sparsity {1 - kept / total:.4f} "
            f"({total - kept}/{total} pruned), mask fixed")
    remask, remove = fix_masks(pairs)
    try:
        method.unlearn(model, method_data, _HookedContext(ctx, remask))
    finally:
        remove()
    remask(model)


# ---------------------------------------------------------------------------------------------- UIB

def parameter_layers(model: nn.Module) -> list[list[torch.Tensor]]:
    """θ^(1..L): each conv or linear layer's parameters together with the batch-norm right after it."""
    layers: list[list[torch.Tensor]] = []
    for m in model.modules():
        own = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and layers:
            layers[-1].extend(own)
        else:
            layers.append(own)
    return layers


def pattern_loss(model, data: UnlearnData, idx: torch.Tensor) -> torch.Tensor:
    """ℓ_KL on pattern points idx: mean[ℓ(z̃) − ℓ(z)] with counterfactuals, else mean ℓ(z)."""
    x, y = data.forget
    loss = -F.cross_entropy(model(x[idx]), y[idx]) if data.forget_counterfactual is not None \
        else F.cross_entropy(model(x[idx]), y[idx])
    if data.forget_counterfactual is not None:
        xc, yc = data.forget_counterfactual
        loss = loss + F.cross_entropy(model(xc[idx]), yc[idx])
    return loss


def influence_scores(model, data: UnlearnData, params, batch_size: int) -> list[torch.Tensor]:
    """|∇_θ ℓ_KL| over all pattern points (first-order influence of z_KL on every parameter)."""
    n = len(data.forget[0])
    total = [torch.zeros_like(p) for p in params]
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size), device=data.forget[0].device)
        grads = torch.autograd.grad(pattern_loss(model, data, idx) * len(idx), params, allow_unused=True)
        total = [t + (g if g is not None else 0) for t, g in zip(total, grads)]
    return [(t / n).abs() for t in total]


def sample_masks(scores: list[torch.Tensor], knobs: UIBKnobs, generator: torch.Generator) -> list[torch.Tensor]:
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


def uib_penalty(model, data: UnlearnData, idx_f, layer_prev: list[torch.Tensor], anchor: list[torch.Tensor],
                params, beta: float) -> torch.Tensor:
    """β·[½‖θ^(L−1) − θ₀^(L−1)‖² + Σ_l ‖∇_{θ^(l)} ℓ_KL‖²] (the I(X; θ^(L)) upper bound of Proposition 1).

    The gradient-norm term R^(l) needs a counterfactual z̃ (bias scenario). In removal (no z̃) it is left out:
    there ℓ_KL = ℓ(z) and ‖∇ℓ(z)‖² is smallest where the model fits z (≈ 0 at the original model), so it
    would pull the model back toward memorising the forget set, against the unlearning it regularises; with
    SR's max step raising ℓ(z) it grew 10× per iteration and its descent step collapsed the model (issue 5,
    docs/methods.md)."""
    kl = 0.5 * sum(((p - a) ** 2).sum() for p, a in zip(layer_prev, anchor))
    if data.forget_counterfactual is None:
        return beta * kl
    grads = torch.autograd.grad(pattern_loss(model, data, idx_f), params, create_graph=True, allow_unused=True)
    r = sum((g ** 2).sum() for g in grads if g is not None)
    return beta * (kl + r)


def regularisation_step(objective: Callable[[], torch.Tensor], params, masks, lr: float,
                        max_halvings: int = 10) -> float:
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


def _run_uib(knobs: UIBKnobs, model, method, data, method_data, ctx):
    if getattr(method, "name", None) not in UIB_METHODS:
        raise ConfigError(f"setting uib: defined for {sorted(UIB_METHODS)}, not {method.name!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    layers = parameter_layers(model)
    layer_prev = layers[-2] if len(layers) >= 2 else layers[-1]  # S_θ = {L−1}
    anchor = [p.detach().clone() for p in layer_prev]
    was_training = model.training
    state = {"masks": None, "active": True}

    def resample():
        model.eval()
        scores = influence_scores(model, data, params, knobs.batch_size)
        state["masks"] = sample_masks(scores, knobs, ctx.generator)
        state["frozen"] = [q.detach().clone() for q in params]
        kept = sum(float(m.sum()) for m in state["masks"])
        ctx.log(f"uib: {kept:.0f}/{sum(m.numel() for m in state['masks'])} parameters sampled for update")

    def regularise(model_):
        """Algorithm 1's regularisation step: descent on the full bound over the pattern points, masked."""
        project()
        state["active"] = False  # R^(l) is the gradient norm over every parameter, not just the sampled
        if knobs.reg_lr > 0:
            training = model_.training
            model_.eval()
            x_f = data.forget[0]
            x_r, y_r = data.retain
            order = torch.randperm(len(x_f), generator=ctx.generator).to(x_f.device)
            steps = []
            for start in range(0, len(x_f), knobs.batch_size):
                idx_f = order[start:start + knobs.batch_size]
                idx_r = torch.randint(0, len(x_r), (min(knobs.batch_size, len(x_r)),),
                                      generator=ctx.generator).to(x_r.device)

                def objective(idx_f=idx_f, idx_r=idx_r):
                    return F.cross_entropy(model_(x_r[idx_r]), y_r[idx_r]) + \
                        uib_penalty(model_, data, idx_f, layer_prev, anchor, params, knobs.beta)

                steps.append(regularisation_step(objective, params, state["masks"], knobs.reg_lr))
            model_.train(training)
            ctx.log(f"uib: regularisation steps {', '.join(f'{st:.3g}' for st in steps)} (reg_lr {knobs.reg_lr})")
        resample()
        state["active"] = True
        model_.train(was_training)

    state["active"] = False
    resample()
    state["active"] = True
    model.train(was_training)
    handles = [p.register_hook(lambda g, i=i: g * state["masks"][i] if state["active"] else g)
               for i, p in enumerate(params)]

    @torch.no_grad()
    def project(*_args):
        """Parameters outside the sample keep their value: undoes what the optimiser applies outside the
        gradient (L2 weight decay, momentum carried over from an earlier mask). Runs before a forward pass
        only when a parameter was written since the last projection (i.e. after an optimiser step), so a
        graph built by an earlier forward of the same step is never invalidated."""
        versions = [q._version for q in params]
        if state.get("versions") == versions:
            return
        for q, m, f in zip(params, state["masks"], state["frozen"]):
            q.copy_(torch.where(m.bool(), q, f))
        state["versions"] = [q._version for q in params]

    handles.append(model.register_forward_pre_hook(project))
    try:
        method.unlearn(model, method_data, _HookedContext(ctx, regularise))
    finally:
        for h in handles:
            h.remove()
    project()
