"""The mutual-information regulariser of Xu & Strohmer ("Machine Unlearning via Information Theoretic
Regularization"), as their code estimates it: a plug-in I(Ŷ; Z) on a batch of *soft* predictions.

With q_i = softmax(logits_i) (clamped to [eps, 1 − eps]) and a discrete Z, the batch joint is
P(Ŷ=c, Z=z) = (1/N) Σ_i q_i[c]·1{z_i = z}, its marginals P(Ŷ=c) = Σ_z P(c, z) and P(Z=z) = share of the batch with
Z = z, and

    I(Ŷ; Z) = Σ_z Σ_c P(c, z) · ln( P(c, z) / (P(c)·P(z) + eps) + eps )          (nats)

(`compute_mutual_information_multiclass` of xushizhou/Machine_Unlearn_via_Info_Reg @ ca32703, binary Z; here any
number of groups, identical for two). Equivalently, with q̄_z the mean softmax of group z and q̄ = Σ_z P(z) q̄_z,
I = Σ_z P(z)·KL(q̄_z ‖ q̄): a P(z)-weighted Jensen–Shannon divergence between the groups' mean predictive
distributions, 0 iff every group has the same mean softmax vector, at most H(Z).

Marginal data-point unlearning builds Z from one remain batch x_r and one unlearn batch x_u as the authors'
`create_train_labels` does: Z = 0 for the mixture [x_r; x_u], Z = 1 for x_r again (`mixture_batch`).

torch is imported lazily (method modules import this one at declaration time); `mutual_information_np` is the
same estimator on numpy arrays.
"""
from __future__ import annotations

import numpy as np

from ..core.lazy import lazy_import

torch = lazy_import("torch")

EPS = 1e-10


def mutual_information(logits, z, n_groups: int | None = None, eps: float = EPS, probs=None):
    """I(Ŷ; Z) of a batch (torch, differentiable): `logits` (N, C) or, instead, `probs` (N, C) rows summing to 1;
    `z` (N,) integer (or 0/1 float) group labels. n_groups: number of Z values (default: max(z) + 1)."""
    if probs is None:
        probs = torch.softmax(logits, dim=1)
    probs = probs.clamp(eps, 1.0 - eps)
    n = probs.shape[0]
    z = z.long()
    k = int(n_groups if n_groups is not None else int(z.max()) + 1)
    onehot = torch.nn.functional.one_hot(z, k).to(probs.dtype)             # (N, K)
    joint = onehot.T @ probs / n                                           # (K, C): P(Z=z, Ŷ=c)
    p_z = onehot.mean(0)                                                   # (K,)
    p_y = joint.sum(0)                                                     # (C,)
    present = p_z > 0  # an absent group contributes 0 (the authors' code has both groups in every batch)
    joint, p_z = joint[present], p_z[present]
    return (joint * torch.log(joint / (p_z[:, None] * p_y[None, :] + eps) + eps)).sum()


def mutual_information_np(probs: np.ndarray, z: np.ndarray, eps: float = EPS) -> float:
    """The same estimator on numpy soft predictions `probs` (N, C) and groups `z` (N,)."""
    probs = np.clip(np.asarray(probs, dtype=np.float64), eps, 1.0 - eps)
    z = np.asarray(z).astype(np.int64)
    total = 0.0
    p_y = np.zeros(probs.shape[1])
    joints = []
    for g in np.unique(z):
        joint = probs[z == g].sum(0) / len(probs)
        joints.append((joint, np.mean(z == g)))
        p_y += joint
    for joint, p_z in joints:
        total += float((joint * np.log(joint / (p_y * p_z + eps) + eps)).sum())
    return total


def mixture_groups(n_remain: int, n_unlearn: int, device=None):
    """Z of the authors' batch [x_r; x_u; x_r]: 0 for the mixture (remain + unlearn), 1 for the remain copy."""
    return torch.cat([torch.zeros(n_remain + n_unlearn, device=device, dtype=torch.long),
                      torch.ones(n_remain, device=device, dtype=torch.long)])


def marginal_mi(logits_remain, logits_unlearn):
    """I(Ŷ; Z) of the authors' marginal-unlearning batch, from the logits of x_r and x_u (x_r counted twice)."""
    logits = torch.cat([logits_remain, logits_unlearn, logits_remain])
    return mutual_information(logits, mixture_groups(len(logits_remain), len(logits_unlearn), logits.device), 2)


def soft_histogram(values, centres, bandwidth: float):
    """(N,) scalar outputs → (N, B) soft assignments to bins at `centres` (Gaussian kernel, rows sum to 1): the
    categorical distribution the estimator reads for a scalar-output model (docs/methods.md, Fig. 2)."""
    logits = -0.5 * ((values[:, None] - centres[None, :]) / bandwidth) ** 2
    return torch.softmax(logits, dim=1)


__all__ = ["EPS", "marginal_mi", "mixture_groups", "mutual_information", "mutual_information_np", "soft_histogram"]
