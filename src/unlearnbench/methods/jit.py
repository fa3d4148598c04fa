"""JiT: zero-shot unlearning by Lipschitz regularisation (Foster et al., TMLR 2025), by default exactly as the
authors' code runs it (jwf40/Information-Theoretic-Unlearning @ c967614, src/lipschitz.py, Lipschitz.modify_weight).

Paper, Eq. 1: per forget sample x, ℓ(x) = (1/N) Σ_j ‖f(x) − f(x + ξ_j)‖₂ / ‖ξ_j‖₂, ξ_j ~ N(0, σ² I), minimised by
SGD over one epoch of the forget set. The authors' code (form `reference`, the default) computes, per forget
mini-batch X (in loader order, unshuffled):

    lo, hi = min(X), max(X)                      scalars over the whole batch tensor
    x̃_ij  = clamp(x_i + σ ξ_ij, lo, hi)          ξ_ij ~ N(0, I) of x's shape
    loss   = (1/N) Σ_j Σ_i ‖f(x_i) − f(x̃_ij)‖₂ / ‖x_i − x̃_ij‖₂      sum over the batch, mean over j;
                                                   f(x̃) under no_grad: only f(x) carries gradient
    loss.backward(); plain SGD step (no momentum, no weight decay)

with the gradients never zeroed between batches (they accumulate over the pass: the k-th step applies
Σ_{m≤k} g_m), the model in whatever mode it was built in (train mode: dropout active, batch-norm statistics
updated), f the logits. Form `equation` is the paper's reading: mean over the batch, gradient through both
passes, eval mode, no clamp (the denominator is ‖σξ‖), gradients zeroed per batch. Every item is its own knob;
a knob left at `form` takes the value of the chosen form (resolved when the knobs are built, so the run record
shows the values used).

Noise is drawn in the model's normalised input space (Classifier.normalize / forward_normalized; the
reference adds it to the normalised tensor its loaders produce) from `ctx.generator` on the CPU, one tensor of
the batch's shape per perturbation, in the order j = 1..N per batch (the reference calls torch.randn on the CPU
default generator in the same order). Perturbed passes run one at a time, as in the reference, so dropout masks
are drawn from torch's global RNG in the reference's order too.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import UnlearningMethod, engine, knob, register, torch

FORMS = {  # what a knob left at "form" becomes
    "reference": {"reduction": "sum", "perturbed_grad": "no_grad", "clamp": "batch_range", "mode": "train",
                  "zero_grad": "once"},
    "equation": {"reduction": "mean", "perturbed_grad": "grad", "clamp": "none", "mode": "eval",
                 "zero_grad": "per_batch"},
}


def lipschitz_loss(model, x, sigma: float, n_perturbations: int, generator, *, reduction: str = "sum",
                   perturbed_grad: bool = False, clamp: bool = True):
    """JiT's loss on one batch of normalised inputs x (see the module docstring); returns (loss, Σ_i den / N,
    Σ_i num / N), the last two as the reference prints them."""
    out = model.forward_normalized(x)
    lo, hi = x.min(), x.max()
    loss = torch.zeros((), device=x.device)
    in_n = torch.zeros((), device=x.device)
    out_n = torch.zeros((), device=x.device)
    for _ in range(n_perturbations):
        noise = torch.randn(x.shape, generator=generator).to(x.device) * sigma
        x_t = x + noise
        if clamp:
            x_t = torch.clamp(x_t, min=lo, max=hi)
        if perturbed_grad:
            out_t = model.forward_normalized(x_t)
        else:
            with torch.no_grad():
                out_t = model.forward_normalized(x_t)
        den = torch.linalg.vector_norm((x - x_t if clamp else noise).flatten(1), dim=1)
        num = torch.linalg.vector_norm(out - out_t, dim=1)
        in_n = in_n + den.detach().sum()
        out_n = out_n + num.detach().sum()
        ratio = num / den
        loss = loss + (ratio.sum() if reduction == "sum" else ratio.mean())
    return loss / n_perturbations, in_n / n_perturbations, out_n / n_perturbations


@register
class JiT(UnlearningMethod):
    name = "jit"
    reads = frozenset({"forget"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): the default config's TPE space (JiT §5 tunes η and σ)
    search_space = {"lr": {"low": 1.0e-5, "high": 0.1, "log": True}, "sigma": {"low": 1.0e-3, "high": 2.0, "log": True}}

    @dataclass
    class Knobs:
        lr: float = knob(0.0003, low=0.0, low_open=True, help="η (paper §5, VGG11: 3e-4 in every scenario)")
        sigma: float = knob(0.5, low=0.0, low_open=True,
                            help="σ of the perturbations (paper §5, VGG11: 0.5 full class, 0.01 sub-class/random)")
        n_perturbations: int = knob(25, low=1, help="N (25 in every reference script)")
        batch_size: int = knob(128, low=1, help="forget batch: 128 full class / random, 64 sub-class (reference)")
        epochs: int = knob(1, low=1, help="passes over the forget set (the paper: one)")
        shuffle: bool = knob(False, help="shuffle the forget set each epoch (the reference's loader does not)")
        form: str = knob("reference", choices=tuple(FORMS),
                         help="reference: the authors' code; equation: the paper's Eq. 1 (sets the knobs below "
                              "that are left at 'form')")
        reduction: str = knob("form", choices=("form", "sum", "mean"), help="over the batch")
        perturbed_grad: str = knob("form", choices=("form", "no_grad", "grad"),
                                   help="whether f(x+ξ) carries gradient")
        clamp: str = knob("form", choices=("form", "batch_range", "none"),
                          help="batch_range: clamp x+ξ to the batch's scalar [min, max], denominator the actual "
                               "displacement; none: denominator ‖σξ‖")
        mode: str = knob("form", choices=("form", "train", "eval"), help="model mode during the pass")
        zero_grad: str = knob("form", choices=("form", "once", "per_batch"),
                              help="once: gradients accumulate over the batches (reference); per_batch: zeroed")

        def __post_init__(self):
            for name, value in FORMS.get(self.form, {}).items():
                if getattr(self, name) == "form":
                    setattr(self, name, value)

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x, _ = data.forget
        optimizer = engine.SGD(model.parameters(), lr=k.lr)
        model.train(k.mode == "train")
        optimizer.zero_grad()
        for epoch in range(k.epochs):
            losses = []
            for idx in engine.batches(len(x), k.batch_size, ctx.generator, shuffle=k.shuffle, device=x.device):
                if k.zero_grad == "per_batch":
                    optimizer.zero_grad()
                loss, in_n, out_n = lipschitz_loss(model, model.normalize(x[idx]), k.sigma, k.n_perturbations,
                                                   ctx.generator, reduction=k.reduction,
                                                   perturbed_grad=k.perturbed_grad == "grad",
                                                   clamp=k.clamp == "batch_range")
                loss.backward()
                optimizer.step()
                losses.append(f"{loss.item():.4g} (in {in_n.item():.4g}, out {out_n.item():.4g})")
            ctx.log(f"epoch {epoch + 1}/{k.epochs} lipschitz loss per batch: {', '.join(losses)}")
            ctx.iteration(model)
        optimizer.zero_grad()
