"""BT: Bad Teacher, "Can bad teaching induce forgetting?" (Chundawat, Tarun, Mandal & Kankanhalli, AAAI 2023a), as
JiT's benchmark runs it.

Reference: jwf40/Information-Theoretic-Unlearning @ c967614, src/forget_*_strategies.py `blindspot` →
src/unlearn.py `blindspot_unlearner`, `unlearning_step`, `UnlearnerLoss` (copied there from
vikram2000b/bad-teaching-unlearning @ f1aa988, src/unlearn.py). The student (the model, train mode) distils from
two teachers: the competent teacher T_c (the trained model, frozen, eval mode) on retain samples and an
incompetent teacher T_i (a freshly initialised network of the same architecture, eval mode) on forget samples:

    t(x) = 1[x ∈ D_f] · softmax(T_i(x)/τ) + 1[x ∈ D_r'] · softmax(T_c(x)/τ)
    loss  = KL(t(x) ‖ softmax(S(x)/τ))   over the batch, F.kl_div's reduction 'mean' (every element: ÷ B·C)

on D_f ∪ D_r', D_r' a random 30% of the retain set (drawn once), shuffled batches of 256, Adam lr 1e-4, 1 epoch,
τ = 1. The reference's `F.kl_div` default reduction 'mean' divides by B·C instead of B (the KL's definition,
'batchmean'); with Adam the scale matters only through ε. Default: the reference; `kl_reduction: batchmean` for
the KL as defined. T_i comes from ctx.fresh_model() (the reference builds it in its main script with the same
constructor: a random init of the same network).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.lazy import lazy_import
from ._common import kl_div
from .base import UnlearningMethod, engine, freeze, frozen_copy, knob, register, torch

F = lazy_import("torch.nn.functional")
optim = lazy_import("unlearnbench.nn.optim")


def bad_teacher_loss(student_logits, tags, competent_logits, incompetent_logits, temperature: float,
                     reduction: str = "mean"):
    """UnlearnerLoss: KL from the tag-selected teacher distribution to the student's (tags: 1 forget, 0 retain)."""
    tags = tags.unsqueeze(1)
    competent = F.softmax(competent_logits / temperature, dim=1)
    incompetent = F.softmax(incompetent_logits / temperature, dim=1)
    target = tags * incompetent + (1 - tags) * competent
    return kl_div(F.log_softmax(student_logits / temperature, dim=1), target, reduction)


@register
class BadTeacher(UnlearningMethod):
    name = "bad_teacher"
    reads = frozenset({"forget", "retain"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): Deep Unlearn's lr and KL temperature (0, 5]; epochs 1-10
    search_space = {"lr": {"low": 1.0e-5, "high": 0.1, "log": True}, "epochs": {"low": 1, "high": 10}, "temperature": {"low": 0.1, "high": 5.0}}

    @dataclass
    class Knobs:
        epochs: int = knob(1, low=1, help="reference: 1")
        lr: float = knob(1e-4, low=0.0, low_open=True, help="Adam learning rate (reference: 1e-4)")
        batch_size: int = knob(256, low=1, help="reference: 256 (ViT 128)")
        retain_fraction: float = knob(0.3, low=0.0, high=1.0, help="share of D_r distilled from T_c (reference: 0.3)")
        temperature: float = knob(1.0, low=0.0, low_open=True, help="KL temperature τ (reference: 1)")
        kl_reduction: str = knob("mean", choices=("mean", "batchmean"),
                                 help="mean: F.kl_div's default, ÷ B·C (reference); batchmean: ÷ B (the KL)")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x_f, _ = data.forget
        x_r, _ = data.retain
        competent = frozen_copy(model)
        incompetent = freeze(ctx.fresh_model().eval())
        keep = torch.randperm(len(x_r), generator=ctx.generator)[:int(k.retain_fraction * len(x_r))].to(x_r.device)
        x = torch.cat([x_f, x_r[keep]])
        tags = torch.cat([torch.ones(len(x_f)), torch.zeros(len(keep))]).to(x.device)
        optimizer = optim.Adam(model.parameters(), lr=k.lr)
        for epoch in range(k.epochs):
            model.train()
            losses = []
            for idx in engine.batches(len(x), k.batch_size, ctx.generator, device=x.device):
                xb = x[idx]
                with torch.no_grad():
                    competent_logits = competent(xb)
                    incompetent_logits = incompetent(xb)
                loss = bad_teacher_loss(model(xb), tags[idx], competent_logits, incompetent_logits, k.temperature,
                                        k.kl_reduction)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            ctx.log(f"bad teacher: epoch {epoch + 1}/{k.epochs} mean loss {sum(losses) / max(len(losses), 1):.5f} "
                    f"({len(x_f)} forget + {len(keep)} retain samples)")
            ctx.iteration(model)
