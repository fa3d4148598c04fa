"""RL: random labelling (Golatkar et al. 2020; as in Unlearn-Sparse, Jia, Liu et al. NeurIPS 2023, unlearn/RL.py at
commit 48d335e, the last revision that has it).

Fine-tune on D_f with every label replaced by a random one, together with D_r:
    min_θ  Σ_{(x,y)∈D_f} ℓ(x, ỹ; θ) + Σ_{(x,y)∈D_r} ℓ(x, y; θ)
As Unlearn-Sparse: at the start of every epoch ỹ is drawn anew, uniformly over all classes (it can equal y), and
the epoch is one shuffled pass over the union D_f ∪ D_r (their ConcatDataset of the relabelled forget set and the
retain set), with one SGD optimiser across epochs (plain momentum 0.9, weight decay 5e-4, lr 0.01, 10 epochs,
batch 256). Knobs: `redraw: once` draws ỹ once before the first epoch; `exclude_true: true` draws ỹ among the
other classes only (ỹ ≠ y); both together are this module's earlier behaviour.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import SGDKnobs, UnlearningMethod, engine, knob, register, torch


def random_labels(y, n_classes: int, generator, exclude_true: bool):
    """ỹ uniform over all classes, or (exclude_true) over the classes other than y."""
    if not exclude_true:
        return torch.randint(0, n_classes, y.shape, generator=generator).to(y.device)
    shift = torch.randint(1, n_classes, y.shape, generator=generator).to(y.device)
    return (y + shift) % n_classes


@register
class RandomLabel(UnlearningMethod):
    name = "random_label"
    reads = frozenset({"forget", "retain"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): Deep Unlearn's lr (log [1e-5, 1e-1]); epochs 1-10
    search_space = {"lr": {"low": 1.0e-5, "high": 0.1, "log": True}, "epochs": {"low": 1, "high": 10}}

    @dataclass
    class Knobs(SGDKnobs):
        redraw: str = knob("epoch", choices=("epoch", "once"),
                           help="draw the random labels at every epoch (Unlearn-Sparse) or once")
        exclude_true: bool = knob(False, help="draw the random label among the other classes only")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x_f, y_f = data.forget
        x_r, y_r = data.retain
        x = torch.cat([x_f, x_r])
        y = torch.cat([random_labels(y_f, data.n_classes, ctx.generator, k.exclude_true), y_r])
        n_f = len(y_f)

        def on_epoch_end(epoch, m):
            ctx.iteration(m)
            if k.redraw == "epoch" and epoch < k.epochs:  # the next epoch's labels (engine.train reads y per batch)
                y[:n_f] = random_labels(y_f, data.n_classes, ctx.generator, k.exclude_true)

        engine.train(model, x, y, k.train_config(), generator=ctx.generator, log=ctx.log, on_epoch_end=on_epoch_end)
