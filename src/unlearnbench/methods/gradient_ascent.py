"""GA: gradient ascent on the forget set's cross-entropy (Thudi et al. 2022; Graves et al. 2021)."""
from __future__ import annotations

from dataclasses import dataclass

from ..lazy import lazy_import
from .base import UnlearningMethod, engine, knob, register

F = lazy_import("torch.nn.functional")


@register
class GradientAscent(UnlearningMethod):
    name = "gradient_ascent"
    reads = frozenset({"forget"})

    @dataclass
    class Knobs:
        epochs: int = knob(2, low=1)
        lr: float = knob(0.005, low=0.0, low_open=True)
        batch_size: int = knob(64, low=1)
        momentum: float = knob(0.9, low=0.0, high=1.0)

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x, y = data.forget
        optimizer = engine.SGD(model.parameters(), lr=k.lr, momentum=k.momentum)
        for epoch in range(k.epochs):
            # eval mode: batch-norm statistics stay those of the training data, not of the forget set
            model.eval()
            for idx in engine.batches(len(x), k.batch_size, ctx.generator, device=x.device):
                loss = -F.cross_entropy(model(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            ctx.log(f"epoch {epoch + 1}/{k.epochs} forget CE {-loss.item():.4f}")
            ctx.iteration(model)
