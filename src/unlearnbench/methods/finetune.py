"""FT: fine-tune on the retain set (Golatkar et al. 2020; Unlearn-Sparse's default recipe: SGD, lr 0.01)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import SGDKnobs, UnlearningMethod, engine, register


@register
class Finetune(UnlearningMethod):
    name = "finetune"
    reads = frozenset({"retain"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): Deep Unlearn's lr (log [1e-5, 1e-1]); epochs 1-10
    search_space = {"lr": {"low": 1.0e-5, "high": 0.1, "log": True}, "epochs": {"low": 1, "high": 10}}

    @dataclass
    class Knobs(SGDKnobs):
        pass

    def unlearn(self, model, data, ctx):
        x, y = data.retain
        engine.train(model, x, y, self.knobs.train_config(), generator=ctx.generator, log=ctx.log,
                     on_epoch_end=lambda epoch, m: ctx.iteration(m))
