"""NegGrad+ (Kurmanji et al. 2023's baseline as Cadet et al. 2024 tune it, "Deep Unlearn"): per step, one retain
and one forget mini-batch, loss = α·CE(retain) − (1 − α)·CE(forget), SGD with momentum; `epochs` passes over the
forget set (the retain batches cycle). An example of a method in a user's own package: the same interface, knobs
and registry as the methods inside unlearnbench, found through the `unlearnbench.methods` entry point."""
from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.core.lazy import lazy_import
from unlearnbench.methods.base import UnlearningMethod, engine, knob, register

F = lazy_import("torch.nn.functional")


@register
class NegGradPlus(UnlearningMethod):
    name = "neggrad_plus"
    reads = frozenset({"forget", "retain"})
    # the conformance suite's fast run for a method outside unlearnbench's own table (tests/test_conformance.py)
    fast_knobs = {"epochs": 1}

    @dataclass
    class Knobs:
        epochs: int = knob(5, low=1, help="passes over the forget set")
        lr: float = knob(0.01, low=0.0, low_open=True)
        alpha: float = knob(0.99, low=0.0, high=1.0, help="weight of the retain loss; 1 − α on the forget ascent")
        batch_size: int = knob(64, low=1)
        momentum: float = knob(0.9, low=0.0, high=1.0)

    def unlearn(self, model, data, ctx):
        k = self.knobs
        (xf, yf), (xr, yr) = data.forget, data.retain
        optimizer = engine.SGD(model.parameters(), lr=k.lr, momentum=k.momentum)
        model.train()
        for epoch in range(k.epochs):
            retain = iter(engine.batches(len(xr), k.batch_size, ctx.generator, device=xr.device))
            for idx_f in engine.batches(len(xf), k.batch_size, ctx.generator, device=xf.device):
                idx_r = next(retain, None)
                if idx_r is None:
                    retain = iter(engine.batches(len(xr), k.batch_size, ctx.generator, device=xr.device))
                    idx_r = next(retain)
                loss = k.alpha * F.cross_entropy(model(xr[idx_r]), yr[idx_r]) \
                    - (1 - k.alpha) * F.cross_entropy(model(xf[idx_f]), yf[idx_f])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            ctx.log(f"epoch {epoch + 1}/{k.epochs} loss {loss.item():.4f}")
            ctx.iteration(model)
