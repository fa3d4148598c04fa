"""SR: SCRUB (Kurmanji, Triantafillou, Hayes & Triantafillou, "Towards Unbounded Machine Unlearning",
NeurIPS 2023, Eq. 3 / Algorithm 1), as in the authors' code (github.com/meghdadk/SCRUB: scrub.py,
thirdparty/repdistiller/helper/loops.py train_distill, SCRUB_args / large_scale_unlearning.ipynb).

Teacher T = frozen copy of the starting model, student S = the model. With d(x) = KL(T(x)/τ ‖ S(x)/τ)·τ²
(DistillKL, temperature τ = kd_T = 4), for epoch e = 1..sgda_epochs:
    if e ≤ msteps:  max-step: one epoch over D_f minimising −d(x)          (forget batches: del_batch_size)
    min-step: one epoch over D_r minimising γ·CE(S(x), y) + α·d(x)          (retain batches: sgda_batch_size)
SGD (plain momentum 0.9, weight decay 5e-4) with the learning rate decayed ×0.1 at lr_decay_epochs (their
adjust_learning_rate: lr · 0.1^(number of decay epochs already passed)). The student is in train mode,
the teacher in eval mode, as in train_distill. Defaults are the repository's (large-scale notebook):
α = 0.001, γ = 0.99, msteps = 2, sgda_epochs = 3, lr = 0.0005, batch sizes 128 (retain) / 32 (forget).
(Their β·loss_kd term is 0 with distill='kd' and is omitted.)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.lazy import lazy_import
from .base import SGDOptimKnobs, UnlearningMethod, engine, frozen_copy, knob, optimizer_step, register, torch

F = lazy_import("torch.nn.functional")


def distill_kl(student_logits, teacher_logits, temperature: float):
    """KL(teacher ‖ student) at temperature T, scaled by T² and averaged over the batch (DistillKL)."""
    log_s = F.log_softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_s, p_t, reduction="sum") * temperature ** 2 / student_logits.shape[0]


@register
class Scrub(UnlearningMethod):
    name = "scrub"
    reads = frozenset({"forget", "retain"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): Deep Unlearn's lr; α, γ log over JiT's two settings (0.001 / 0.99, 1 / 5) and beyond
    search_space = {"lr": {"low": 1.0e-5, "high": 0.1, "log": True}, "sgda_epochs": {"low": 1, "high": 10}, "alpha": {"low": 1.0e-3, "high": 10.0, "log": True}, "gamma": {"low": 0.1, "high": 10.0, "log": True}}

    @dataclass
    class Knobs(SGDOptimKnobs):
        alpha: float = knob(0.001, low=0.0, help="α: weight of the KL to the teacher on retain (min step)")
        gamma: float = knob(0.99, low=0.0, help="γ: weight of the retain cross-entropy (min step)")
        msteps: int = knob(2, low=0, help="epochs that include a max step on the forget set")
        sgda_epochs: int = knob(3, low=1, help="epochs (each: optional max step, then a min step)")
        lr: float = knob(0.0005, low=0.0, low_open=True, help="sgda_learning_rate")
        lr_decay_epochs: str = knob("3,5,9", help="epochs at which lr is multiplied by lr_decay_rate")
        lr_decay_rate: float = knob(0.1, low=0.0)
        temperature: float = knob(4.0, low=0.0, low_open=True, help="kd_T")
        batch_size: int = knob(128, low=1, help="sgda_batch_size (retain)")
        forget_batch_size: int = knob(32, low=1, help="del_batch_size (forget)")
        clip_norm: float = knob(0.0, low=0.0, help="clip the gradient norm before every step (0: off; JiT's "
                                                   "full-class copy of SCRUB clips to 1)")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        teacher = frozen_copy(model)
        decay_at = [int(e) for e in str(k.lr_decay_epochs).replace(" ", "").split(",") if e]
        optimizer = k.sgd(model.parameters(), k.lr)
        x_f, _ = data.forget
        x_r, y_r = data.retain
        for epoch in range(1, k.sgda_epochs + 1):
            optimizer.lr = k.lr * k.lr_decay_rate ** sum(epoch > e for e in decay_at)
            model.train()
            max_loss = float("nan")
            if epoch <= k.msteps:
                for idx in engine.batches(len(x_f), k.forget_batch_size, ctx.generator, device=x_f.device):
                    xb = x_f[idx]
                    with torch.no_grad():
                        t_logits = teacher(xb)
                    loss = -distill_kl(model(xb), t_logits, k.temperature)
                    optimizer_step(optimizer, loss, clip_norm=k.clip_norm)
                    max_loss = -loss.item()
            for idx in engine.batches(len(x_r), k.batch_size, ctx.generator, device=x_r.device):
                xb, yb = x_r[idx], y_r[idx]
                with torch.no_grad():
                    t_logits = teacher(xb)
                logits = model(xb)
                loss = k.gamma * F.cross_entropy(logits, yb) + k.alpha * distill_kl(logits, t_logits, k.temperature)
                optimizer_step(optimizer, loss, clip_norm=k.clip_norm)
            ctx.log(f"epoch {epoch}/{k.sgda_epochs} lr {optimizer.lr:.3g} forget KL {max_loss:.4f} "
                    f"retain loss {loss.item():.4f}")
            ctx.iteration(model)
