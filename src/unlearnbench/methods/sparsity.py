"""Sparsity setting (Jia, Liu et al. 2023, "Model Sparsity Can Simplify Machine Unlearning"): the inner method
unlearns the *sparse original* with its pruning mask fixed.

Unlearn-Sparse's pipeline is prune → retrain sparse → unlearn. The pruning and the retraining happen upstream,
once per (dataset, seed, sparsity), in the sparse baseline this wrapper declares as its starting model
(`start = "sparse_baseline"`, rule sparse_baseline, training.train_sparse_baseline); its masks travel in the
checkpoint. The wrapper keeps the mask fixed during unlearning: a gradient hook multiplies each pruned tensor's
gradient by the mask (under engine.SGD, with momentum and L2 weight decay, a pruned weight then gets an
exactly-zero update and stays 0.0), and the weights are re-masked after every iteration and at the end (for
methods that write weights directly, e.g. Fisher noise). LiSSA's Hessian-vector products also pass through the
hook, so IF solves the Newton step restricted to the surviving sub-network. It never prunes.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..nn.pruning import fix_masks, model_masks, stored_masks
from .base import Wrapper, knob, register


@register
class Sparsity(Wrapper):
    name = "sparsity"
    start = "sparse_baseline"

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): none of its own (its sparsity chooses the starting model, never tuned): the inner method's space
    search_space = {}

    @dataclass
    class Knobs:
        sparsity: float = knob(0.95, low=0.0, high=1.0, low_open=True,
                               help="share of conv weights pruned (global magnitude, Unlearn-Sparse: 95%)")

    @classmethod
    def start_params(cls, knobs) -> dict:
        return {"sparsity": knobs.sparsity}

    def unlearn(self, model, data, ctx):
        pairs = model_masks(model, stored_masks(model, ctx.start_meta), self.knobs.sparsity)
        kept = sum(int(m.sum()) for _, m in pairs)
        total = sum(m.numel() for _, m in pairs)
        ctx.log(f"sparsity: starting from the sparse baseline, conv sparsity {1 - kept / total:.4f} "
                f"({total - kept}/{total} pruned), mask fixed")
        remask, remove = fix_masks(pairs)
        drop_hook = ctx.before_iteration(remask)
        try:
            self.run_inner(model, data, ctx)
        finally:
            drop_hook()
            remove()
        remask()
