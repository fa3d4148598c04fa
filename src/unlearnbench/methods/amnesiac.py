"""AMN: Amnesiac unlearning (Graves, Nagisetty & Ganesh, AAAI 2021), as JiT's benchmark runs it.

Reference: jwf40/Information-Theoretic-Unlearning @ c967614, src/forget_{full_class,subclass,random}_strategies.py
`amnesiac` (from vikram2000b/bad-teaching-unlearning @ f1aa988), training loop `fit_one_unlearning_cycle` in
src/unlearn.py. Every forget sample gets a random wrong label ỹ, drawn once, uniformly among the classes other than
its own (full class: all classes but the forget class; sub-class: all superclasses but the forget superclass;
random: all classes but the sample's label — one rule, since in the class scenarios every forget label is the
forgotten (super)class); then the model is trained on the relabelled forget set together with the retain set:

    min_θ  Σ_{(x,y)∈D_f} ℓ(x, ỹ; θ) + Σ_{(x,y)∈D_r} ℓ(x, y; θ)

with Adam (lr 1e-4), cross-entropy averaged per mini-batch of 128 drawn from the shuffled union (reshuffled every
epoch, last batch kept), 3 epochs, model in train mode. Labels come from ctx.generator (the reference: Python's
random.choice); the order from ctx.generator (the reference: a shuffled DataLoader).
"""
from __future__ import annotations

from dataclasses import dataclass

from ._common import images, train_adam, wrong_labels
from .base import UnlearningMethod, knob, register, torch


@register
class Amnesiac(UnlearningMethod):
    name = "amnesiac"
    reads = frozenset({"forget", "retain"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): Deep Unlearn's lr (log [1e-5, 1e-1]); epochs 1-10
    search_space = {"lr": {"low": 1.0e-5, "high": 0.1, "log": True}, "epochs": {"low": 1, "high": 10}}

    @dataclass
    class Knobs:
        epochs: int = knob(3, low=1, help="reference: 3")
        lr: float = knob(1e-4, low=0.0, low_open=True, help="Adam learning rate (reference: 1e-4)")
        batch_size: int = knob(128, low=1, help="reference: 128")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x_f, y_f = data.forget
        x_r, y_r = data.retain
        y_wrong = wrong_labels(y_f, data.n_classes, ctx.generator)
        x = torch.cat([x_f, x_r])
        y = torch.cat([y_wrong, y_r])
        train_adam(model, len(x), images(model, x, y), epochs=k.epochs, lr=k.lr, batch_size=k.batch_size,
                   generator=ctx.generator, ctx=ctx, what="amnesiac")
