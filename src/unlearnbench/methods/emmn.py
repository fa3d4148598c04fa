"""EMMN: error-maximising / error-minimising noise, the first zero-shot method of "Zero-Shot Machine Unlearning"
(Chundawat, Tarun, Mandal & Kankanhalli, IEEE TIFS 2023b), as JiT's benchmark runs it.

No official code exists (ayushkumartarun/zero-shot-unlearning holds only GKT); the reference is JiT's own
re-implementation: jwf40/Information-Theoretic-Unlearning @ c967614, src/forget_full_class_strategies.py `emmn`,
src/unlearn.py `UNSIR_noise_train`, `emmn_noise_train`, `emmc_create_noisy_lodaer`, `fit_one_unlearning_cycle`.
Full class only. No real data: the forget set is read only for its class and image shape.

1. Error-maximising noise for the forget class c_f: N_f ∈ R^{4×C×H×W} ~ N(0, I), Adam (lr 0.1) for 25 steps on
   −CE(f(N_f), c_f) + 0.1 · mean_b Σ N_f² (UNSIR's objective).
2. Error-minimising noise for every other class c: N_c ~ N(0, I) of the same shape, Adam (lr 0.1) for 30 steps on
   CE(f(N_c), c) (no norm penalty).
3. One training set of 80 copies of every N_c (labelled c) and of N_f (labelled c_f), shuffled batches of 4,
   2 epochs of Adam (lr 1e-4) on the cross-entropy, train mode.

Which noise images the training set repeats (`noise_per_copy`): the reference's builder (`emmc_create_noisy_lodaer`)
loops `for k in range(batch[0].size(0))`, over the C channels of one noise image, so each copy adds only the first
C = 3 of every class's 4 images. That made JiT's tables and is the default (`channels`: the first C images, C = the
data's channel count); `batch` uses all of them (the paper's reading).

The reference has no separate repair step: the error-minimising noise is trained on jointly with the error-maximising
one (the paper describes impair, then repair). The model is in train mode while the noise is optimised and the
model's gradients of all noise steps reach the first training step, as in the reference (`noise_mode`,
`keep_noise_grads`). Noise tensors from ctx.generator, drawn forget first, then every retain class in order (the
reference: torch.randn on the global RNG in that order). The reference also evaluates on the retain test set after
each epoch (counted in its runtime, not done here).
"""
from __future__ import annotations

from dataclasses import dataclass

from ._common import NOISE_PER_COPY, copied_noise, noise_and_images, optimise_noise, the_forget_class, train_adam
from .base import UnlearningMethod, knob, register, torch


@register
class EMMN(UnlearningMethod):
    name = "emmn"
    reads = frozenset({"forget"})
    scenarios = frozenset({"full_class"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): log around the reference's Adam 1e-4, noise 0.1; epochs 1-5 (2)
    search_space = {"lr": {"low": 1.0e-5, "high": 1.0e-2, "log": True}, "noise_lr": {"low": 0.01, "high": 1.0, "log": True}, "epochs": {"low": 1, "high": 5}}

    @dataclass
    class Knobs:
        noise_batch_size: int = knob(4, low=1, help="noise images per class (reference: 4)")
        forget_noise_steps: int = knob(25, low=0, help="error-maximising steps (reference: 25)")
        retain_noise_steps: int = knob(30, low=0, help="error-minimising steps per class (reference: 30)")
        noise_lr: float = knob(0.1, low=0.0, low_open=True, help="reference: 0.1")
        noise_l2: float = knob(0.1, low=0.0, help="weight of mean_b Σ N_f² (reference: 0.1)")
        noise_copies: int = knob(80, low=1, help="copies of every class's noise (reference: 80)")
        epochs: int = knob(2, low=1, help="reference: 2")
        lr: float = knob(1e-4, low=0.0, low_open=True, help="Adam learning rate (reference: 1e-4)")
        batch_size: int = knob(4, low=1, help="reference: 4")
        noise_mode: str = knob("train", choices=("train", "eval"),
                               help="model mode while the noise is optimised (reference: train)")
        keep_noise_grads: bool = knob(True, help="the noise steps' model gradients enter the first training step")
        noise_per_copy: str = knob("channels", choices=NOISE_PER_COPY,
                                   help="noise images of each class each copy adds: the first C (C = image channels; "
                                        "the reference's builder, default) or all of them (the paper's reading)")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x_f, y_f = data.forget
        label = the_forget_class(y_f, "emmn")
        shape, device = (k.noise_batch_size, *x_f.shape[1:]), x_f.device
        others = [c for c in range(data.n_classes) if c != label]
        forget_noise = torch.randn(shape, generator=ctx.generator).to(device)
        retain_noise = {c: torch.randn(shape, generator=ctx.generator).to(device) for c in others}
        model.train(k.noise_mode == "train")
        forget_noise = optimise_noise(model, forget_noise, label, steps=k.forget_noise_steps, lr=k.noise_lr,
                                      l2=k.noise_l2, maximise=True)
        for c in others:
            retain_noise[c] = optimise_noise(model, retain_noise[c], c, steps=k.retain_noise_steps, lr=k.noise_lr,
                                             l2=0.0, maximise=False)
        if not k.keep_noise_grads:
            model.zero_grad(set_to_none=True)
        per_class = [copied_noise(n, k.noise_per_copy) for n in [*retain_noise.values(), forget_noise]]
        noise = torch.cat(per_class)
        labels = torch.tensor(others + [label], device=device).repeat_interleave(len(per_class[0]))
        ctx.log(f"emmn: error-maximising noise for class {label}, error-minimising noise for {len(others)} classes; "
                f"training on {k.noise_copies}x{len(noise)} noise images")
        n_items = k.noise_copies * len(noise)
        train_adam(model, n_items, noise_and_images(model, noise, labels, n_items), epochs=k.epochs, lr=k.lr,
                   batch_size=k.batch_size, generator=ctx.generator, ctx=ctx, what="emmn")
        model.zero_grad(set_to_none=True)
