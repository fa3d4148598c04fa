"""Per-purpose seeds, derived in one place from a run's seed (so no two stages share a random stream by accident,
and a changed derivation shows up in one diff)."""
from __future__ import annotations

# purpose -> (multiplier, offset): derived = seed * multiplier + offset
_PURPOSES = {
    "train": (1, 0),             # baseline and retrain-oracle initialisation and data order
    "unlearn": (7919, 17),       # an unlearning method's randomness (data order, noise, sampling)
    "sparse_retrain": (7919, 101),  # retraining the pruned model of the Sparsity setting
    "attack": (1, 0),            # membership-inference attacks and their cross-validation in aggregation
    "incompetent_teacher": (7919, 211),  # ZRF's randomly initialised teacher (population stage)
}


def derive(seed: int, purpose: str) -> int:
    if purpose not in _PURPOSES:
        raise KeyError(f"unknown seed purpose {purpose!r}; known: {', '.join(sorted(_PURPOSES))}")
    multiplier, offset = _PURPOSES[purpose]
    return int(seed) * multiplier + offset
