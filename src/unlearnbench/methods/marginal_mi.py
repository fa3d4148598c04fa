"""Marginal unlearning (Xu & Strohmer, "Machine Unlearning via Information Theoretic Regularization"): minimise

    L = CE(f(x_r), y_r) + γ · I(Ŷ; Z)

per step over one remain batch x_r (64) and one unlearn batch x_u (16), where I(Ŷ; Z) is the authors' batch
estimator on soft predictions (unlearnbench.evaluation.mutual_info) with Z = 0 for the mixture [x_r; x_u] and Z = 1 for x_r
again. The penalty is a weighted JS divergence between the mean softmax of the mixture and of the remain batch, so
it pushes the model's *average* prediction on D_u towards its average on D_r ("marginal" effect of D_u), without
gradient ascent and without the forget labels. As the authors' `train_unlearn_model`
(xushizhou/Machine_Unlearn_via_Info_Reg @ ca32703, Data_Unlearning_MNIST_Plot.py): Adam (lr 1e-3, fresh), an
epoch = zip(remain loader, unlearn loader), i.e. ⌈|D_u| / 16⌉ steps, each on a fresh shuffled remain batch.
Deviations and the measured comparison with their code: docs/methods.md, "Xu & Strohmer".
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.lazy import lazy_import
from ..evaluation.mutual_info import marginal_mi, mixture_groups, mutual_information
from ..nn.optim import Adam
from .base import UnlearningMethod, engine, knob, register, torch

F = lazy_import("torch.nn.functional")


def epoch_batches(n_remain: int, n_unlearn: int, batch_size: int, unlearn_batch_size: int, generator,
                  epoch_length: str, device=None):
    """(remain indices, unlearn indices) per step of one epoch. zip: as the authors' zip(remain_loader,
    unlearn_loader): it ends with the shorter loader (the unlearn one, whose last batch may be short). remain: one
    pass over D_r, the unlearn batches cycling (a fresh permutation each time D_u is exhausted)."""
    remain = engine.batches(n_remain, batch_size, generator, device=device)
    if epoch_length == "zip":
        yield from zip(remain, engine.batches(n_unlearn, unlearn_batch_size, generator, device=device))
        return
    unlearn = iter(())
    for idx_r in remain:
        idx_u = next(unlearn, None)
        if idx_u is None:
            unlearn = engine.batches(n_unlearn, unlearn_batch_size, generator, device=device)
            idx_u = next(unlearn)
        yield idx_r, idx_u


def make_optimizer(knobs, params):
    if knobs.optimizer == "adam":
        return Adam(params, lr=knobs.lr)
    return engine.SGD(params, lr=knobs.lr, momentum=knobs.momentum)


def marginal_step(model, optimizer, x_r, y_r, x_u, gamma: float, two_pass: bool):
    """One update; returns (CE, MI) as floats. two_pass: the authors' forward passes (remain for the CE, then the
    144-image batch [x_r; x_u; x_r] for the MI) — needed when batch norm is in train mode; otherwise one pass over
    [x_r; x_u] gives the same loss and gradient (the remain logits enter the MI twice, as their copy does)."""
    if two_pass:
        ce = F.cross_entropy(model(x_r), y_r)
        logits = model(torch.cat([x_r, x_u, x_r]))
        mi = mutual_information(logits, mixture_groups(len(x_r), len(x_u), logits.device), 2)
    else:
        logits = model(torch.cat([x_r, x_u]))
        ce = F.cross_entropy(logits[:len(x_r)], y_r)
        mi = marginal_mi(logits[:len(x_r)], logits[len(x_r):])
    loss = ce + gamma * mi
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(ce.detach()), float(mi.detach())


@register
class MarginalMI(UnlearningMethod):
    name = "marginal_mi"
    reads = frozenset({"forget", "retain"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): Xu & Strohmer's γ (1.5-5) and epochs (2-20), widened
    search_space = {"gamma": {"low": 0.1, "high": 10.0, "log": True}, "lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True}, "epochs": {"low": 1, "high": 20}}

    @dataclass
    class Knobs:
        gamma: float = knob(3.5, low=0.0, help="γ: weight of I(Ŷ; Z) (the authors run 1.5, 3.5 and 5)")
        epochs: int = knob(5, low=1, help="the authors pair γ 3.5 with 5 or 20 epochs, γ 1.5 with 20, γ 5 with 2")
        optimizer: str = knob("adam", choices=("adam", "sgd"), help="adam: the authors' (fresh Adam)")
        lr: float = knob(1e-3, low=0.0, low_open=True)
        momentum: float = knob(0.9, low=0.0, high=1.0, help="optimizer: sgd only")
        batch_size: int = knob(64, low=1, help="remain batch (the authors' 64)")
        forget_batch_size: int = knob(16, low=1, help="unlearn batch (the authors' 16)")
        epoch_length: str = knob("zip", choices=("zip", "remain"),
                                 help="zip: ⌈|D_u|/forget_batch_size⌉ steps (the authors'); remain: one pass over D_r")
        train_mode: bool = knob(False, help="batch norm in train mode (two forward passes, as the authors' code)")

    def __init__(self, knobs=None):
        super().__init__(knobs)
        self.history: list[dict] = []

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x_u, _ = data.forget  # the unlearn labels are never read (as in the authors' loop)
        x_r, y_r = data.retain
        if len(x_u) == 0 or len(x_r) == 0:
            raise ValueError("marginal_mi needs a non-empty forget set and a non-empty retain set")
        optimizer = make_optimizer(k, model.parameters())
        for epoch in range(k.epochs):
            model.train(k.train_mode)
            ce_sum = mi_sum = 0.0
            steps = 0
            for idx_r, idx_u in epoch_batches(len(x_r), len(x_u), k.batch_size, k.forget_batch_size, ctx.generator,
                                              k.epoch_length, device=x_r.device):
                ce, mi = marginal_step(model, optimizer, x_r[idx_r], y_r[idx_r], x_u[idx_u], k.gamma, k.train_mode)
                ce_sum, mi_sum, steps = ce_sum + ce, mi_sum + mi, steps + 1
            record = {"epoch": epoch + 1, "ce": ce_sum / steps, "mi": mi_sum / steps, "steps": steps}
            self.history.append(record)
            ctx.log(f"epoch {epoch + 1}/{k.epochs}: {steps} steps, CE {record['ce']:.4f}, MI {record['mi']:.5f} nats")
            ctx.iteration(model)
