"""FT: fine-tune on the retain set (Golatkar et al. 2020; Unlearn-Sparse's default recipe: SGD, lr 0.01)."""
from __future__ import annotations

from dataclasses import dataclass

from .. import engine
from .base import UnlearningMethod, knob, register


@register
class Finetune(UnlearningMethod):
    name = "finetune"
    reads = frozenset({"retain"})

    @dataclass
    class Knobs:
        epochs: int = knob(10, low=1)
        lr: float = knob(0.01, low=0.0, low_open=True)
        batch_size: int = knob(64, low=1)
        momentum: float = knob(0.9, low=0.0, high=1.0)
        weight_decay: float = knob(5e-4, low=0.0)

    def unlearn(self, model, data, ctx):
        k = self.knobs
        cfg = engine.TrainConfig(epochs=k.epochs, batch_size=k.batch_size, lr=k.lr, momentum=k.momentum,
                                 weight_decay=k.weight_decay, schedule="constant")
        x, y = data.retain
        engine.train(model, x, y, cfg, generator=ctx.generator, log=ctx.log,
                     on_epoch_end=lambda epoch, m: ctx.iteration(m))
