"""RL: random labelling (Golatkar et al. 2020; as in Unlearn-Sparse, Jia, Liu et al. NeurIPS 2023, RL.py).

Fine-tune on D_f with every label replaced by a random wrong one, together with D_r:
    min_θ  Σ_{(x,y)∈D_f} ℓ(x, ỹ; θ) + Σ_{(x,y)∈D_r} ℓ(x, y; θ),   ỹ ~ U(classes \\ {y})
Unlearn-Sparse draws ỹ uniformly from all classes (it can hit y); we exclude y (`exclude_true`, default on)
so every forget label is really random; set exclude_true: false for their exact draw. Labels are drawn
once (as their dataset relabelling), then SGD on the shuffled union (Unlearn-Sparse defaults: 10 epochs,
lr 0.01, momentum 0.9, weight decay 5e-4).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import SGDKnobs, UnlearningMethod, engine, knob, register, torch


def random_labels(y, n_classes: int, generator, exclude_true: bool):
    if not exclude_true:
        return torch.randint(0, n_classes, y.shape, generator=generator).to(y.device)
    shift = torch.randint(1, n_classes, y.shape, generator=generator).to(y.device)
    return (y + shift) % n_classes


@register
class RandomLabel(UnlearningMethod):
    name = "random_label"
    reads = frozenset({"forget", "retain"})

    @dataclass
    class Knobs(SGDKnobs):
        exclude_true: bool = knob(True, help="draw the random label among the other classes only")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x_f, y_f = data.forget
        x_r, y_r = data.retain
        y_rand = random_labels(y_f, data.n_classes, ctx.generator, k.exclude_true)
        x = torch.cat([x_f, x_r])
        y = torch.cat([y_rand, y_r])
        engine.train(model, x, y, k.train_config(), generator=ctx.generator, log=ctx.log,
                     on_epoch_end=lambda epoch, m: ctx.iteration(m))
