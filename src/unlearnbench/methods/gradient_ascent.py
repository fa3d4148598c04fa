"""GA: gradient ascent on the forget set's cross-entropy (Thudi et al. 2022; Graves et al. 2021), as in Unlearn-Sparse
(Jia, Liu et al. 2023, unlearn/GA.py with unlearn/impl.py, commit 80ba55d):

    per forget minibatch: loss = −CE(f(x), y) (batch mean), one SGD descent step on it

SGD with plain momentum 0.9 and coupled weight decay 5e-4 (their optimiser is the same for every method, so the decay
stays on while ascending), constant lr; the model in train mode (batch-norm uses and updates the forget batches'
statistics); batch 256, shuffled, last short batch kept; their README's GA run: lr 1e-4, 5 epochs. Knobs:
`mode: eval` keeps batch-norm in eval mode (running statistics of the training data, this module's earlier
behaviour), `weight_decay: 0` drops the decay.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.lazy import lazy_import
from .base import SGDOptimKnobs, UnlearningMethod, engine, knob, register

F = lazy_import("torch.nn.functional")


@register
class GradientAscent(UnlearningMethod):
    name = "gradient_ascent"
    reads = frozenset({"forget"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): Deep Unlearn's lr (log [1e-5, 1e-1]); epochs 1-10
    search_space = {"lr": {"low": 1.0e-5, "high": 0.1, "log": True}, "epochs": {"low": 1, "high": 10}}

    @dataclass
    class Knobs(SGDOptimKnobs):
        epochs: int = knob(5, low=1)
        lr: float = knob(1e-4, low=0.0, low_open=True)
        batch_size: int = knob(256, low=1)
        mode: str = knob("train", choices=("train", "eval"), help="batch-norm mode during the ascent")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x, y = data.forget
        optimizer = k.sgd(model.parameters(), k.lr)
        for epoch in range(k.epochs):
            model.train(k.mode == "train")
            for idx in engine.batches(len(x), k.batch_size, ctx.generator, device=x.device):
                loss = -F.cross_entropy(model(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            ctx.log(f"epoch {epoch + 1}/{k.epochs} forget CE {-loss.item():.4f}")
            ctx.iteration(model)
