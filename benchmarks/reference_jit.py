"""Our JiT (methods/jit.py, default form `reference`) against the authors' code on identical inputs.

The reference is jwf40/Information-Theoretic-Unlearning @ c96761408b4997381c2feab4fbe613aa4c1f2b12, src/lipschitz.py
(Lipschitz.modify_weight), called unchanged through the harness of the research notes
(/tmp/ref/jit/harness/jit_ref_harness.py; override with JIT_HARNESS): it stubs wandb/transformers, injects the noise
tensors in place of its torch.randn draws, records the gradient each SGD step applies and the printed loss. Nothing
of the reference is part of the project; re-create the checkout with

  mkdir -p /tmp/ref/jit/itu && git --git-dir=<mirror of jwf40/Information-Theoretic-Unlearning> \
      archive c96761408b4997381c2feab4fbe613aa4c1f2b12 | tar -x -C /tmp/ref/jit/itu

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
import copy
import os
import sys

import torch
from torch import nn

HARNESS = os.environ.get("JIT_HARNESS", "/tmp/ref/jit/harness")


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
    sys.path.insert(0, HARNESS)
    from jit_ref_harness import reference_jit_update

    gen = torch.Generator().manual_seed(seed)
    batches, noises = [], []
    for start in range(0, len(x), knobs["batch_size"]):
        xb = model.normalize(x[start:start + knobs["batch_size"]])
        batches.append(xb)
        noises.append([torch.randn(xb.shape, generator=gen) for _ in range(knobs["n_perturbations"])])
    wrapped = Normalised(model).train(mode == "train")
    torch.manual_seed(dropout_seed)
    out = reference_jit_update(wrapped, batches, sigma=knobs["sigma"], lr=knobs["lr"],
                               n_samples=knobs["n_perturbations"], noises=noises)
    strip = lambda d: {k.removeprefix("inner."): v for k, v in d.items()}
    return out["loss"], [strip(g) for g in out["grads"]], strip(out["params"])


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
