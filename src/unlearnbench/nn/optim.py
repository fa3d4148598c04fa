"""Adam for the methods whose reference code uses torch.optim.Adam (AMN, BT, UNSIR, EMMN).

The same update as torch.optim.Adam (no AMSGrad, L2 weight decay added to the gradient, bias-corrected
moments), written out per parameter in the order of torch's single-tensor implementation, so on CPU the result
is bit for bit torch's (tests/test_jit_methods.py checks it). Our own for the reason engine.SGD is: constructing
a torch.optim optimizer imports torch._dynamo (about 2 s of CPU per process here), which would be counted in the
unlearning time of every short job.
"""
from __future__ import annotations

from ..core.lazy import lazy_import

torch = lazy_import("torch")


class Adam:
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.steps = [0] * len(self.params)  # per parameter, as torch (a parameter without a gradient is skipped)
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        with torch.no_grad():
            beta1, beta2 = self.betas
            for i, (p, m, v) in enumerate(zip(self.params, self.exp_avg, self.exp_avg_sq)):
                if p.grad is None:
                    continue
                self.steps[i] += 1
                bias_correction1 = 1 - beta1 ** self.steps[i]
                bias_correction2_sqrt = (1 - beta2 ** self.steps[i]) ** 0.5
                step_size = self.lr / bias_correction1
                grad = p.grad if not self.weight_decay else p.grad.add(p, alpha=self.weight_decay)
                m.lerp_(grad, 1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (v.sqrt() / bias_correction2_sqrt).add_(self.eps)
                p.addcdiv_(m, denom, value=-step_size)


__all__ = ["Adam"]
