"""ℓ1-sparse unlearning (Jia, Liu et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023,
Eq. 3 "ℓ1-sparse MU"; Unlearn-Sparse FT_l1):

    θ_u = argmin_θ  L_FT(θ; D_r) + γ_t ‖θ‖₁,    γ_t = γ (1 − t/T)

with t the current epoch (0-based) and T = epochs: the ℓ1 weight decays linearly to 0 ("linearly
decreasing γ" as their `current_alpha = alpha * (1 - epoch / no_l1_epochs)`). ‖θ‖₁ sums |θ| over every
parameter (their l1_regularization). Defaults: γ = 5e-4, 10 epochs, lr 0.01 (their README's FT_l1 run).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import SGDKnobs, UnlearningMethod, engine, knob, register


def l1_norm(model):
    return sum(p.abs().sum() for p in model.parameters() if p.requires_grad)


@register
class L1Sparse(UnlearningMethod):
    name = "l1_sparse"
    reads = frozenset({"retain"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): Deep Unlearn's lr, epochs 1-10; γ log around Unlearn-Sparse's 5e-4
    search_space = {"lr": {"low": 1.0e-5, "high": 0.1, "log": True}, "epochs": {"low": 1, "high": 10}, "gamma": {"low": 1.0e-5, "high": 1.0e-2, "log": True}}

    @dataclass
    class Knobs(SGDKnobs):
        gamma: float = knob(5e-4, low=0.0, help="γ: initial ℓ1 weight, decayed as γ(1 − t/T)")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        state = {"epoch": 0}

        def extra_loss(m):
            return k.gamma * (1.0 - state["epoch"] / k.epochs) * l1_norm(m)

        def on_epoch_end(epoch, m):
            state["epoch"] = epoch
            ctx.iteration(m)

        cfg = k.train_config()
        x, y = data.retain
        engine.train(model, x, y, cfg, generator=ctx.generator, log=ctx.log, extra_loss=extra_loss,
                     on_epoch_end=on_epoch_end)
