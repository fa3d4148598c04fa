"""Adam as multi-tensor foreach ops: the same update as torch.optim.Adam (no weight decay, no amsgrad), ours for the
reason engine.SGD is ours: torch.optim's first step imports torch._dynamo, measured at 2.5 s of a job here
(tests/test_xs.py checks the update equals torch.optim.Adam's step for step). Torch-free at import."""
from __future__ import annotations

from .lazy import lazy_import

torch = lazy_import("torch")


class Adam:
    """m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps = lr, betas, eps
        self.step_count = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        with torch.no_grad():
            self.step_count += 1
            b1, b2 = self.betas
            live = [i for i, p in enumerate(self.params) if p.grad is not None]
            params = [self.params[i] for i in live]
            grads = [self.params[i].grad for i in live]
            m = [self.m[i] for i in live]
            v = [self.v[i] for i in live]
            torch._foreach_lerp_(m, grads, 1 - b1)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, 1 - b2)
            bias1 = 1 - b1 ** self.step_count
            bias2_sqrt = (1 - b2 ** self.step_count) ** 0.5
            denom = torch._foreach_sqrt(v)
            torch._foreach_div_(denom, bias2_sqrt)
            torch._foreach_add_(denom, self.eps)
            torch._foreach_addcdiv_(params, m, denom, -self.lr / bias1)


__all__ = ["Adam"]
