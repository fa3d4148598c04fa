"""UNSIR: "Fast Yet Effective Machine Unlearning" (Tarun, Chundawat, Mandal & Kankanhalli, IEEE TNNLS 2023), as
JiT's benchmark runs it.

Reference: jwf40/Information-Theoretic-Unlearning @ c967614, src/forget_full_class_strategies.py and
src/forget_subclass_strategies.py `UNSIR`, with src/unlearn.py `UNSIR_noise`, `UNSIR_noise_train`,
`UNSIR_create_noisy_loader`, `fit_one_unlearning_cycle` (from vikram2000b/Fast-Machine-Unlearning @ 252bc92).

1. Error-maximising noise: a learnable batch N ∈ R^{32×C×H×W}, N ~ N(0, I), in the model's normalised input space,
   Adam (lr 0.1) for 25 steps (sub-class: 250) on  −CE(f(N), c_f) + 0.1 · mean_b Σ N²,  c_f the forget class (sub-
   class: its superclass), the model in train mode (as the reference leaves it).
2. Impair: one epoch of Adam (lr 1e-4) on the shuffled union of 80 copies of N's first C images (`noise_per_copy`,
   below; labelled c_f) and the first 500
   training samples of every retain class, batches of 32.
3. Repair: one epoch of Adam (lr 1e-4, a fresh optimiser) on those retain samples alone, batches of 128.

Which noise images the impair set repeats (`noise_per_copy`): the reference's builder
(`UNSIR_create_noisy_loader`) loops `for i in range(batch[0].size(0))`, i.e. over the C channels of one noise
image, so each of the 80 copies adds only the first C = 3 of the 32 optimised images (240 noise items, not 2,560).
That is what made JiT's tables, so it is the default (`channels`: the first C images, C = the data's channel count,
the same loop on any data); `batch` is the paper's reading (every image in every copy).

The model's gradients from the noise steps are not zeroed before the first impair step (the reference's
optimisers only zero the noise and then the model after its first step), so they enter that step:
`keep_noise_grads: true` (default) reproduces it, false zeroes them. Retain samples per class are taken in training-set
order (listed class by class, as the reference) by the label the model is trained on (the reference, sub-class: per fine class; with CIFAR's 500 images per
fine class the reference takes the whole retain set in both scenarios, which `samples_per_class: 0` gives).
Defined for full_class and sub_class (JiT's code implements both and its Tables 3 report sub-class UNSIR; its §5
text calls UNSIR full-class only); noise from ctx.generator (the reference: torch.randn on the global RNG).
"""
from __future__ import annotations

from dataclasses import dataclass

from ._common import (NOISE_PER_COPY, copied_noise, images, noise_and_images, optimise_noise, the_forget_class,
                      train_adam)
from .base import UnlearningMethod, knob, register, torch


def first_per_class(y, exclude: int, per_class: int):
    """Indices of the first `per_class` samples (0: all) of every class but `exclude`, class by class (ascending), each
    class's in training-set order: the order of the reference's retain list (`get_classwise_ds`, then
    `classwise_train[i][:500]` for each retain class i), so a shuffled permutation picks the same samples."""
    keep = []
    for c in torch.unique(y).tolist():
        if c == exclude:
            continue
        idx = torch.nonzero(y == c).flatten()
        keep.append(idx if per_class == 0 else idx[:per_class])
    return torch.cat(keep) if keep else torch.zeros(0, dtype=torch.int64, device=y.device)


@register
class UNSIR(UnlearningMethod):
    name = "unsir"
    reads = frozenset({"forget", "retain"})
    scenarios = frozenset({"full_class", "sub_class"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): log around the reference's Adam 1e-4, noise 0.1, 25 (sub-class 250) steps
    search_space = {"lr": {"low": 1.0e-5, "high": 1.0e-2, "log": True}, "noise_lr": {"low": 0.01, "high": 1.0, "log": True}, "noise_steps": {"low": 5, "high": 250, "log": True}}

    @dataclass
    class Knobs:
        noise_batch_size: int = knob(32, low=1, help="noise images (reference: 32)")
        noise_steps: int = knob(25, low=0, help="Adam steps on the noise (reference: 25 full class, 250 sub-class)")
        noise_lr: float = knob(0.1, low=0.0, low_open=True, help="reference: 0.1")
        noise_l2: float = knob(0.1, low=0.0, help="weight of mean_b Σ N² (reference: 0.1)")
        noise_copies: int = knob(80, low=1, help="copies of the noise batch in the impair set (reference: 80)")
        samples_per_class: int = knob(500, low=0, help="retain samples per class (reference: 500; 0: all)")
        lr: float = knob(1e-4, low=0.0, low_open=True, help="Adam learning rate, impair and repair (reference: 1e-4)")
        impair_epochs: int = knob(1, low=0)
        repair_epochs: int = knob(1, low=0)
        impair_batch_size: int = knob(32, low=1, help="reference: 32")
        repair_batch_size: int = knob(128, low=1, help="reference: 128")
        noise_mode: str = knob("train", choices=("train", "eval"),
                               help="model mode while the noise is optimised (reference: train)")
        keep_noise_grads: bool = knob(True, help="the noise steps' model gradients enter the first impair step")
        noise_per_copy: str = knob("channels", choices=NOISE_PER_COPY,
                                   help="noise images each copy adds: the first C (C = image channels; the reference's "
                                        "builder, default) or the whole batch (the paper's reading)")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x_f, y_f = data.forget
        x_r, y_r = data.retain
        label = the_forget_class(y_f, "unsir")
        keep = first_per_class(y_r, label, k.samples_per_class)
        x_keep, y_keep = x_r[keep], y_r[keep]
        noise = torch.randn((k.noise_batch_size, *x_f.shape[1:]), generator=ctx.generator).to(x_f.device)
        model.train(k.noise_mode == "train")
        noise = optimise_noise(model, noise, label, steps=k.noise_steps, lr=k.noise_lr, l2=k.noise_l2, maximise=True)
        if not k.keep_noise_grads:
            model.zero_grad(set_to_none=True)
        with torch.no_grad():
            ce = torch.nn.functional.cross_entropy(model.eval().forward_normalized(noise),
                                                   torch.full((len(noise),), label, device=noise.device))
        noise = copied_noise(noise, k.noise_per_copy)
        ctx.log(f"unsir: noise CE on class {label} after {k.noise_steps} steps {ce.item():.3f}; impair on "
                f"{k.noise_copies}x{len(noise)} noise + {len(keep)} retain samples, repair on the retain samples")
        n_noise = k.noise_copies * len(noise)
        labels = torch.full((len(noise),), label, dtype=torch.int64, device=noise.device)
        train_adam(model, n_noise + len(keep), noise_and_images(model, noise, labels, n_noise, x_keep, y_keep),
                   epochs=k.impair_epochs, lr=k.lr, batch_size=k.impair_batch_size, generator=ctx.generator, ctx=ctx,
                   what="unsir impair")
        train_adam(model, len(keep), images(model, x_keep, y_keep), epochs=k.repair_epochs, lr=k.lr,
                   batch_size=k.repair_batch_size, generator=ctx.generator, ctx=ctx, what="unsir repair")
        model.zero_grad(set_to_none=True)
