"""JiT: zero-shot Lipschitz unlearning (Foster et al., TMLR 2025, Eq. 1 and Algorithm 1).

Loss per forget sample x: (1/N) Σ_j ‖f(x) − f(x + ξ_j)‖₂ / ‖ξ_j‖₂ with ξ_j ~ N(0, σ² I), one epoch over
the forget set only. Noise is added in the model's normalised input space (the space the paper's σ
refers to: their loaders normalise before the model). The model stays in eval mode so batch-norm
statistics do not drift. f is the logit vector (the paper's code compares model outputs, i.e. logits).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import UnlearningMethod, engine, knob, register, torch


def lipschitz_loss(model, x_norm, sigma: float, n_perturbations: int, generator):
    """Mean over samples and perturbations of ‖f(x) − f(x+ξ)‖₂ / ‖ξ‖₂ (inputs already normalised)."""
    head = model.forward_normalized
    out = head(x_norm)
    noise = torch.randn((n_perturbations, *x_norm.shape), generator=generator).to(x_norm.device) * sigma
    perturbed = head((x_norm.unsqueeze(0) + noise).flatten(0, 1)).view(n_perturbations, len(x_norm), -1)
    ratio = (out.unsqueeze(0) - perturbed).norm(dim=-1) / noise.flatten(2).norm(dim=-1)
    return ratio.mean()


@register
class JiT(UnlearningMethod):
    name = "jit"
    reads = frozenset({"forget"})

    @dataclass
    class Knobs:
        lr: float = knob(0.0003, low=0.0, low_open=True, help="η; VGG11 values from the paper")
        sigma: float = knob(0.01, low=0.0, low_open=True, help="σ of the Gaussian perturbations")
        n_perturbations: int = knob(25, low=1, help="N")
        batch_size: int = knob(32, low=1, help="forget samples per optimiser step")
        epochs: int = knob(1, low=1, help="the paper uses one epoch")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x, _ = data.forget
        optimizer = engine.SGD(model.parameters(), lr=k.lr)
        model.eval()
        for epoch in range(k.epochs):
            for idx in engine.batches(len(x), k.batch_size, ctx.generator, device=x.device):
                xb = model.normalize(x[idx])
                loss = lipschitz_loss(model, xb, k.sigma, k.n_perturbations, ctx.generator)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            ctx.log(f"epoch {epoch + 1}/{k.epochs} lipschitz loss {loss.item():.4f}")
            ctx.iteration(model)
