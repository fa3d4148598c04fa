"""Our JiT (methods/jit.py, default form `reference`) against the authors' code on identical inputs.

The reference is jwf40/Information-Theoretic-Unlearning @ c96761408b4997381c2feab4fbe613aa4c1f2b12: its
`lipschitz_forgetting` (src/forget_full_class_strategies.py, which runs src/lipschitz.py's Lipschitz.modify_weight)
called whole, as its main calls it (`reference` below: the noise tensors replace its torch.randn draws, every loss
and every applied gradient is recorded; its closing metrics need scikit-learn < 1.8 and are otherwise skipped).
Nothing of the reference is part of the project; re-create the checkout (JIT_REF_SRC, default /tmp/ref/jit/itu/src)
with

  mkdir -p /tmp/ref/jit/itu && git --git-dir=<mirror of jwf40/Information-Theoretic-Unlearning> \
      archive c96761408b4997381c2feab4fbe613aa4c1f2b12 src | tar -x -C /tmp/ref/jit/itu

Both sides get the same model (a deep copy), the same forget images in the same batches (the reference receives
them normalised by the model's own Normalize), the same noise (ours draws it from ctx.generator; the reference is
handed the same tensors, regenerated from a generator with the same seed) and, in train mode, the same dropout
masks (torch's global RNG seeded identically before each side; the perturbed passes run one at a time on both).
Prints, per case, the max abs difference of the per-batch losses, of the gradient each step applied (accumulated,
as the reference applies it) and of the final weights, relative to their scale.

  PYTHONPATH=src python benchmarks/reference_jit.py            # small_cnn and vgg11 width 8 (CPU, ~1 min)
  PYTHONPATH=src python benchmarks/reference_jit.py --width 64  # adds vgg11 at width 64 (the paper's network)
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import sys
import warnings

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # reference_baselines: the checkout, stubs, helpers


class Normalised(nn.Module):
    """The model as the reference sees it: normalised input in, logits out."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner.forward_normalized(x)


def ours(model, x, y, knobs, seed, dropout_seed):
    from unlearnbench.nn import engine
    from unlearnbench.methods import UnlearnContext, UnlearnData, build_method

    names = {id(p): n for n, p in model.named_parameters()}
    grads, losses = [], []
    step = engine.SGD.step

    def recording_step(self):
        grads.append({names[id(p)]: p.grad.detach().clone() for p in self.params if p.grad is not None})
        return step(self)

    import unlearnbench.methods.jit as jit
    loss_fn = jit.lipschitz_loss

    def recording_loss(*a, **k):
        out = loss_fn(*a, **k)
        losses.append(float(out[0]))
        return out

    engine.SGD.step, jit.lipschitz_loss = recording_step, recording_loss
    try:
        method = build_method("jit", knobs)
        torch.manual_seed(dropout_seed)
        method.unlearn(model, UnlearnData(declared={"forget"}, forget=(x, y), n_classes=10),
                       UnlearnContext(torch.device("cpu"), torch.Generator().manual_seed(seed), log=lambda s: None))
    finally:
        engine.SGD.step, jit.lipschitz_loss = step, loss_fn
    return losses, grads, {k: v.detach().clone() for k, v in model.state_dict().items()}


def reference(model, x, knobs, seed, dropout_seed, mode):
    """JiT's `lipschitz_forgetting` (src/forget_full_class_strategies.py, which builds `lipschitz.Lipschitz` and calls
    `modify_weight`) called whole, as its main calls it, on an unshuffled forget loader of our batches (normalised by
    the model's own Normalize). Only its random draws are ours: each `torch.randn` of its AddGaussianNoise returns the
    next of our noise tensors (checked: same shape, same count), and dropout masks come from the same torch seed.
    Recorded: the loss each `backward` starts from, and the (accumulated) gradient each SGD step applies."""
    from reference_baselines import REAL_LOADER, jit_reference, whole

    strategies, _, _ = jit_reference()
    gen = torch.Generator().manual_seed(seed)
    items, noises = [], []
    for start in range(0, len(x), knobs["batch_size"]):
        xb = model.normalize(x[start:start + knobs["batch_size"]]).detach()
        items += [(xb[i], 0, 0) for i in range(len(xb))]
        noises += [torch.randn(xb.shape, generator=gen) for _ in range(knobs["n_perturbations"])]
    # its own generator: a DataLoader iterator draws its base seed from the global RNG otherwise, one draw ahead of
    # the dropout masks, which ours (index batches, no DataLoader) never makes
    forget = REAL_LOADER(items, batch_size=knobs["batch_size"], shuffle=False, generator=torch.Generator().manual_seed(0))
    wrapped = Normalised(model).train(mode == "train")
    names = {id(p): n.removeprefix("inner.") for n, p in wrapped.named_parameters()}
    grads, losses = [], []
    real_randn, real_sgd, real_backward = torch.randn, torch.optim.SGD, torch.Tensor.backward

    def our_noise(*size, **kw):
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else tuple(size)
        if "generator" not in kw and noises and shape == tuple(noises[0].shape):
            return noises.pop(0)
        return real_randn(*size, **kw)

    class RecordingSGD(real_sgd):
        def step(self, *a, **k):
            grads.append({names[id(p)]: p.grad.detach().clone() for g in self.param_groups for p in g["params"]
                          if p.grad is not None})
            return super().step(*a, **k)

    def recording_backward(tensor, *a, **k):
        if tensor.dim() == 0:
            losses.append(float(tensor))
        return real_backward(tensor, *a, **k)

    torch.randn, torch.optim.SGD, torch.Tensor.backward = our_noise, RecordingSGD, recording_backward
    torch.manual_seed(dropout_seed)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            whole(strategies.lipschitz_forgetting, wrapped, None, retain_train_dl=forget, retain_valid_dl=forget,
                  forget_train_dl=forget, forget_valid_dl=forget, valid_dl=forget, dampening_constant=1,
                  selection_weighting=10, full_train_dl=forget, device="cpu", num_classes=10,
                  n_samples=knobs["n_perturbations"], learning_rate=knobs["lr"], lipschitz_weighting=knobs["sigma"])
    finally:
        torch.randn, torch.optim.SGD, torch.Tensor.backward = real_randn, real_sgd, real_backward
    assert not noises, f"the reference drew {len(noises)} fewer noise tensors than ours"
    strip = {k.removeprefix("inner."): v.detach().clone() for k, v in wrapped.state_dict().items()}
    return losses, grads, strip


def compare(label, build, n, knobs, our_knobs=None):
    torch.manual_seed(0)
    model = build()
    x = torch.randint(0, 256, (n, *model.input_shape), dtype=torch.uint8)
    y = torch.zeros(n, dtype=torch.int64)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    mine = ours(copy.deepcopy(model), x, y, {**knobs, **(our_knobs or {})}, seed=7, dropout_seed=11)
    ref = reference(copy.deepcopy(model), x, knobs, seed=7, dropout_seed=11, mode=knobs["mode"])
    dl = max(abs(a - b) for a, b in zip(mine[0], ref[0]))
    assert len(mine[1]) == len(ref[1]), (len(mine[1]), len(ref[1]))
    dg = max((a[k] - b[k]).abs().max().item() for a, b in zip(mine[1], ref[1]) for k in b)
    g_scale = max(b[k].abs().max().item() for b in ref[1] for k in b)
    dp = max((mine[2][k] - ref[2][k]).abs().max().item() for k in ref[2] if ref[2][k].is_floating_point())
    moved = max((ref[2][k] - start[k]).abs().max().item() for k in ref[2] if ref[2][k].is_floating_point())
    print(f"{label:44s} steps {len(ref[0])}  loss ref {ref[0][0]:.6g}..  |Δloss| {dl:.2e}  |Δgrad| {dg:.2e} "
          f"(max |grad| {g_scale:.2e})  |Δweights| {dp:.2e} (max weight change {moved:.2e})")
    return dl, dg, dp


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, action="append", default=None, help="vgg11 widths (default 8)")
    args = parser.parse_args()
    from unlearnbench.nn.models import build_model

    def small():
        m = build_model("small_cnn", in_channels=3, n_classes=10, mean=[0.5] * 3, std=[0.25] * 3, width=16)
        m.input_shape = (3, 16, 16)
        return m

    def vgg(width):
        def build():
            m = build_model("vgg11", in_channels=3, n_classes=10, mean=[0.5071, 0.4865, 0.4409],
                            std=[0.2673, 0.2564, 0.2762], width=width, head="reference")
            m.input_shape = (3, 32, 32)
            return m
        return build

    worst = [0.0, 0.0, 0.0]
    cases = [("small_cnn w16 (BN), train mode", small, 40, dict(sigma=0.5, lr=0.05, mode="train")),
             ("small_cnn w16 (BN), eval mode", small, 40, dict(sigma=0.5, lr=0.05, mode="eval")),
             ("small_cnn w16 (BN), train, sigma 0.01", small, 40, dict(sigma=0.01, lr=3e-4, mode="train"))]
    for width in args.width or [8]:
        cases += [(f"vgg11 w{width} reference head, train (dropout)", vgg(width), 40,
                   dict(sigma=0.5, lr=3e-4, mode="train")),
                  (f"vgg11 w{width} reference head, eval", vgg(width), 40, dict(sigma=0.5, lr=3e-4, mode="eval")),
                  (f"vgg11 w{width} reference head, train, sigma 0.01", vgg(width), 40,
                   dict(sigma=0.01, lr=3e-4, mode="train"))]
    for label, build, n, extra in cases:
        knobs = {"n_perturbations": 5, "batch_size": 16, **extra}
        diffs = compare(label, build, n, knobs)
        worst = [max(a, b) for a, b in zip(worst, diffs)]
    print(f"worst: |Δloss| {worst[0]:.2e}  |Δgrad| {worst[1]:.2e}  |Δweights| {worst[2]:.2e}")
    # negative controls: the comparison does see a difference when ours deviates in one item
    for change in ({"reduction": "mean"}, {"zero_grad": "per_batch"}, {"clamp": "none"}):
        compare(f"control: ours with {change}", small, 40, dict(n_perturbations=5, batch_size=16, sigma=0.5, lr=0.05,
                                                                mode="eval"), change)


if __name__ == "__main__":
    main()
