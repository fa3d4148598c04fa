"""Feature unlearning (Xu & Strohmer): remove the information a protected feature Z carries, by the W2 barycenter of
the conditional laws X | Z = z (optimal for their family of information-theoretic utilities), with partial repair
along McCann's interpolation, and the demographic-parity gap that measures what is left.

Barycenter maps (`BarycenterRepair(method=...)`):
  quantile   per-feature 1-D barycenters, exact and cheap (tabular data): with F_z, Q_z the empirical CDF and
             quantile function of feature j in group z and weights w_z, the barycenter's quantile function is
             Q̄ = Σ_z w_z Q_z, and a point x of group g maps to B(x) = Q̄(F_g(x)) (= w_g x + Σ_{h≠g} w_h T_{g→h}(x),
             the monotone OT maps). Ties (one-hot columns) are split uniformly at random (a seeded randomised
             probability-integral transform), so that the repaired groups have the same law even for atoms, where no
             deterministic map exists.
  emd        multivariate, exact OT (ot.emd) on the squared Euclidean cost. Two groups: plan G between them,
             T_{0→1}(x_i) = Σ_j G_ij y_j / a_i (barycentric projection), B(x) = w_0 x + w_1 T_{0→1}(x) and
             symmetrically (McCann's interpolation at the barycenter). K > 2 groups: ot.lp.free_support_barycenter,
             then each group's barycentric projection onto it.
  sinkhorn   the same with entropic OT (ot.sinkhorn, reg on the cost divided by its maximum): larger n.
  auto       emd while the larger group has at most `emd_max_n` points, sinkhorn beyond.
Weights: `shares` (w_z = n_z / n, the barycenter of the conditional laws under P(Z)) or `equal` (w_z = 1/K; Fig. 4's
Bary = 0.5·Id + 0.5·T). Points outside the fitted sample (test folds) map by the same quantile formula, or, for
the OT maps, by their nearest fitted neighbour's displacement: B(x) = x + (B(x_nn) − x_nn).

Partial repair: x_λ = (1 − λ)·x + λ·B(x), λ ∈ [0, 1] (λ = 1: full repair).
numpy + POT (imported when an OT map is fitted); no torch.
"""
from __future__ import annotations

import numpy as np

METHODS = ("quantile", "emd", "sinkhorn", "auto")
WEIGHTS = ("shares", "equal")


def dp_gap(pred, z) -> float:
    """Demographic-parity gap of hard predictions: |P[Ŷ=1 | Z=1] − P[Ŷ=1 | Z=0]| (two groups); for more groups
    the largest difference between two groups' positive rates. Lower is better (0: Ŷ ⊥ Z)."""
    pred, z = np.asarray(pred).astype(np.float64), np.asarray(z)
    rates = [pred[z == g].mean() for g in np.unique(z)]
    if len(rates) < 2:
        raise ValueError("dp_gap needs at least two groups in z")
    return float(max(rates) - min(rates))


def gaussian_barycenter_1d(means, sds, weights) -> tuple[float, float]:
    """Closed form: the W2 barycenter of N(m_z, s_z²) with weights w_z is N(Σ w_z m_z, (Σ w_z s_z)²)."""
    w = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    return float(w @ np.asarray(means)), float(w @ np.asarray(sds))


def quantile_barycenter_1d(samples: list[np.ndarray], weights, levels: np.ndarray) -> np.ndarray:
    """Q̄(u) = Σ_z w_z Q_z(u) at `levels` u ∈ (0, 1): the 1-D W2 barycenter's quantile function."""
    w = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    out = np.zeros(len(levels))
    for w_z, s in zip(w, samples):
        out += w_z * _quantile(np.sort(np.asarray(s, dtype=np.float64)), levels)
    return out


def _quantile(sorted_values: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse of the empirical CDF (left-continuous): Q(u) = v_(⌈u·n⌉)."""
    n = len(sorted_values)
    k = np.clip(np.ceil(np.asarray(u) * n).astype(np.int64) - 1, 0, n - 1)
    return sorted_values[k]


class BarycenterRepair:
    """Fit on (X, z), then `transform(X, z, lam)` repairs any points of the fitted groups (see the module doc)."""

    def __init__(self, method: str = "quantile", weights: str = "shares", sinkhorn_reg: float = 0.05,
                 emd_max_n: int = 3000, support_size: int = 500, seed: int = 0):
        if method not in METHODS:
            raise ValueError(f"repair map: expected one of {', '.join(METHODS)}, got {method!r}")
        if weights not in WEIGHTS:
            raise ValueError(f"repair weights: expected one of {', '.join(WEIGHTS)}, got {weights!r}")
        self.method, self.weights_rule = method, weights
        self.sinkhorn_reg, self.emd_max_n, self.support_size, self.seed = sinkhorn_reg, emd_max_n, support_size, seed

    # ------------------------------------------------------------------------------------------------- fitting
    def fit(self, X, z) -> "BarycenterRepair":
        X = np.asarray(X, dtype=np.float64)
        z = np.asarray(z)
        if X.ndim != 2 or len(X) != len(z):
            raise ValueError(f"BarycenterRepair.fit: X must be (n, d) and z (n,), got {X.shape} and {z.shape}")
        self.groups = np.unique(z)
        if len(self.groups) < 2:
            raise ValueError("BarycenterRepair.fit: z has a single group; nothing to repair")
        counts = np.array([np.sum(z == g) for g in self.groups], dtype=np.float64)
        self.w = counts / counts.sum() if self.weights_rule == "shares" else np.full(len(counts), 1 / len(counts))
        self.X_by = {g: X[z == g] for g in self.groups}
        self.solver = self.method
        if self.method == "auto":
            self.solver = "emd" if counts.max() <= self.emd_max_n else "sinkhorn"
        if self.solver == "quantile":
            self.sorted = {g: np.sort(self.X_by[g], axis=0) for g in self.groups}
        else:
            self.images = self._fit_ot()
        return self

    def _plan(self, A, B):
        import ot

        a, b = np.full(len(A), 1 / len(A)), np.full(len(B), 1 / len(B))
        M = ot.dist(A, B)  # squared Euclidean
        if self.solver == "emd":
            return ot.emd(a, b, M, numItermax=10_000_000)
        return ot.sinkhorn(a, b, M / max(M.max(), 1e-12), self.sinkhorn_reg, numItermax=10_000)

    def _fit_ot(self) -> dict:
        """Barycenter images of the fitted points, per group."""
        gs = list(self.groups)
        if len(gs) == 2:
            A, B = self.X_by[gs[0]], self.X_by[gs[1]]
            G = self.plan = self._plan(A, B)
            t_ab = (G @ B) / G.sum(1, keepdims=True)
            t_ba = (G.T @ A) / G.sum(0)[:, None]
            w0, w1 = self.w
            return {gs[0]: w0 * A + w1 * t_ab, gs[1]: w1 * B + w0 * t_ba}
        import ot

        rng = np.random.default_rng(self.seed)
        pooled = np.concatenate([self.X_by[g] for g in gs])
        init = pooled[rng.choice(len(pooled), size=min(self.support_size, len(pooled)), replace=False)]
        support = ot.lp.free_support_barycenter([self.X_by[g] for g in gs],
                                                [np.full(len(self.X_by[g]), 1 / len(self.X_by[g])) for g in gs],
                                                init, weights=self.w)
        images = {}
        for g in gs:
            G = self._plan(self.X_by[g], support)
            images[g] = (G @ support) / G.sum(1, keepdims=True)
        return images

    # ------------------------------------------------------------------------------------------------- mapping
    def barycenter_image(self, X, z, rng: np.random.Generator | None = None) -> np.ndarray:
        """B(x) for every row (its group's barycentric image)."""
        X = np.asarray(X, dtype=np.float64)
        z = np.asarray(z)
        rng = rng if rng is not None else np.random.default_rng(self.seed)
        out = np.empty_like(X)
        for g in np.unique(z):
            if g not in self.X_by:
                raise ValueError(f"BarycenterRepair: group {g!r} was not in the fitted data ({list(self.groups)})")
            rows = np.flatnonzero(z == g)
            out[rows] = (self._quantile_image(X[rows], g, rng) if self.solver == "quantile"
                         else self._nearest_image(X[rows], g))
        return out

    def _quantile_image(self, X, g, rng) -> np.ndarray:
        ref = self.sorted[g]
        n = len(ref)
        u = np.empty_like(X)
        for j in range(X.shape[1]):
            lo = np.searchsorted(ref[:, j], X[:, j], side="left")
            hi = np.searchsorted(ref[:, j], X[:, j], side="right")
            u[:, j] = (lo + rng.random(len(X)) * (hi - lo)) / n  # uniform over the tied block's CDF range
        u = np.clip(u, 0.5 / n, 1 - 0.5 / n)
        out = np.zeros_like(X)
        for w_h, h in zip(self.w, self.groups):
            out += w_h * np.take_along_axis(self.sorted[h], _rank(u, len(self.sorted[h])), axis=0)
        return out

    def _nearest_image(self, X, g, chunk: int = 2048) -> np.ndarray:
        ref = self.X_by[g]
        ref_sq = (ref ** 2).sum(1)[None, :]
        nn = np.concatenate([(ref_sq - 2 * X[i:i + chunk] @ ref.T).argmin(1) for i in range(0, len(X), chunk)])
        return X + (self.images[g][nn] - ref[nn])

    def transform(self, X, z, lam: float, rng: np.random.Generator | None = None) -> np.ndarray:
        """Partial repair (McCann): (1 − λ)·x + λ·B(x)."""
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"repair λ must lie in [0, 1], got {lam}")
        X = np.asarray(X, dtype=np.float64)
        if lam == 0.0:
            return X.copy()
        return (1 - lam) * X + lam * self.barycenter_image(X, z, rng)


def _rank(u: np.ndarray, n: int) -> np.ndarray:
    return np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)


__all__ = ["BarycenterRepair", "METHODS", "WEIGHTS", "dp_gap", "gaussian_barycenter_1d", "quantile_barycenter_1d"]
