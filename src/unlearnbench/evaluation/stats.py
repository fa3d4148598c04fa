"""Statistics on per-seed metric values: summaries, paired tests, Holm correction.

Long-format input (``long_df``) has the columns
``dataset, scenario, setting, method, seed, metric, value``: one row per
(configuration, seed, metric). The reference for "vs Retrain" comparisons is
``setting == "standard", method == "retrain"``.

scipy/pandas are imported lazily so that importing this module stays cheap.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "summarize",
    "paired_wilcoxon",
    "rank_biserial",
    "holm",
    "compare_table",
    "summary_table",
    "is_pvalue_metric",
    "KEYS",
    "SUMMARY_COLUMNS",
    "COMPARE_COLUMNS",
]

KEYS = ("dataset", "scenario", "setting", "method", "metric")
SUMMARY_COLUMNS = ("n", "mean", "std", "ci_low", "ci_high", "t_low", "t_high", "note")
COMPARE_COLUMNS = (
    "dataset", "scenario", "metric", "family", "setting", "method", "reference",
    "n", "statistic", "pvalue", "pvalue_holm", "rank_biserial", "mean_diff",
    "significant", "note",
)

#: Differences are rounded to this many decimals before ranking, so that values
#: equal up to floating-point round-off (e.g. 85.3-85.1 vs 90.2-90.0) tie and
#: exact zeros are recognised. Metric values are O(1)-O(100), far coarser.
DIFF_DECIMALS = 10


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


# ---------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------
def summarize(
    values: Any,
    *,
    seed: int,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
) -> dict:
    """Mean, spread and two confidence intervals of per-seed values.

    Returns ``dict(n, mean, std, ci_low, ci_high, t_low, t_high, note)``:

    * non-finite values (NaN/inf) are dropped; ``n`` counts finite values only
      and ``note`` says ``"dropped k non-finite"``;
    * ``std`` is the sample standard deviation (ddof=1);
    * ``ci_low/ci_high``: bootstrap CI of the mean,
      ``scipy.stats.bootstrap((x,), np.mean, method="BCa", vectorized=True,
      n_resamples=n_resamples, confidence_level=confidence,
      rng=np.random.default_rng(seed))``. If BCa cannot be computed (it warns
      or returns NaN, e.g. with very few distinct values) the percentile
      interval with the same seed is used and the note says so;
    * ``t_low/t_high``: Student-t interval ``scipy.stats.t.interval(confidence,
      n-1, loc=mean, scale=std/sqrt(n))``.

    Degenerate cases (no warnings emitted): ``n == 0`` -> everything NaN,
    note ``"n=0"``; ``n == 1`` -> ``std`` and both CIs NaN, note ``"n=1"``;
    all values identical -> ``std = 0`` and both CIs ``(v, v)``, note
    ``"constant"``.
    """
    from scipy import stats as st

    x = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(x)
    notes = []
    if not finite.all():
        notes.append(f"dropped {int((~finite).sum())} non-finite")
    x = x[finite]
    n = int(x.size)
    nan = float("nan")
    out = {"n": n, "mean": nan, "std": nan, "ci_low": nan, "ci_high": nan,
           "t_low": nan, "t_high": nan}
    if n == 0:
        out["note"] = _join(*notes, "n=0")
        return out
    mean = float(np.mean(x))
    out["mean"] = mean
    if n == 1:
        out["note"] = _join(*notes, "n=1")
        return out
    if np.all(x == x[0]):
        v = float(x[0])
        out.update(mean=v, std=0.0, ci_low=v, ci_high=v, t_low=v, t_high=v)
        out["note"] = _join(*notes, "constant")
        return out
    std = float(np.std(x, ddof=1))
    out["std"] = std
    t_low, t_high = st.t.interval(confidence, n - 1, loc=mean, scale=std / np.sqrt(n))
    out["t_low"], out["t_high"] = float(t_low), float(t_high)

    def _boot(method: str):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = st.bootstrap(
                (x,), np.mean, n_resamples=n_resamples, vectorized=True,
                confidence_level=confidence, method=method,
                rng=np.random.default_rng(seed),
            )
        ci = res.confidence_interval
        return float(ci.low), float(ci.high), caught

    lo, hi, caught = _boot("BCa")
    if caught or not (np.isfinite(lo) and np.isfinite(hi)):
        lo, hi, _ = _boot("percentile")
        notes.append("BCa undefined; percentile bootstrap CI")
    out["ci_low"], out["ci_high"] = lo, hi
    out["note"] = _join(*notes)
    return out


# ---------------------------------------------------------------------------
# paired tests
# ---------------------------------------------------------------------------
def _abs_ranks(d: np.ndarray, zero_method: str) -> np.ndarray:
    """Ranks of |d| (average ranks for ties), aligned with d; zero differences get rank 0: they are dropped
    before ranking ("wilcox") or ranked, then dropped ("pratt")."""
    from scipy.stats import rankdata

    ranks = np.zeros_like(d, dtype=np.float64)
    if zero_method == "wilcox":
        ranks[d != 0] = rankdata(np.abs(d[d != 0]))
    elif zero_method == "pratt":
        ranks[d != 0] = rankdata(np.abs(d))[d != 0]
    else:
        raise ValueError("zero_method must be 'wilcox' or 'pratt'")
    return ranks


def _signed_rank_sums(d: np.ndarray, zero_method: str) -> tuple[float, float]:
    """(T+, T-) from ranks of |d| (average ranks for ties), zeros per zero_method."""
    ranks = _abs_ranks(d, zero_method)
    return float(ranks[d > 0].sum()), float(ranks[d < 0].sum())


def rank_biserial(x: Any, y: Any | None = None, *, zero_method: str = "wilcox") -> float:
    """Matched-pairs rank-biserial correlation ``r = (T+ - T-) / (T+ + T-)``.

    ``T+``/``T-`` are the sums of the ranks of ``|d|`` (``d = x - y``, average
    ranks for ties) over positive/negative differences; zero differences are
    dropped before ranking (``"wilcox"``) or ranked then dropped (``"pratt"``).
    In [-1, 1]; +1 = every difference positive. Returns 0.0 if all d are 0.
    (Kerby 2014, "simple difference formula".)
    """
    d = np.asarray(x, dtype=np.float64).ravel()
    if y is not None:
        d = d - np.asarray(y, dtype=np.float64).ravel()
    d = np.round(d, DIFF_DECIMALS)
    tp, tm = _signed_rank_sums(d, zero_method)
    if tp + tm == 0:
        return 0.0
    return (tp - tm) / (tp + tm)


def paired_wilcoxon(x: Any, y: Any, *, zero_method: str = "wilcox") -> dict:
    """Two-sided Wilcoxon signed-rank test of paired values ``x`` vs ``y``.

    ``d = round(x - y, 10)`` (rounding makes round-off-level differences tie or
    vanish; see ``DIFF_DECIMALS``); pairs with a non-finite member are dropped.

    * ``zero_method`` default ``"wilcox"``: zero differences (e.g. both models
      at 100 % accuracy for a seed) are discarded and the test is conditional on
      the non-zero pairs -- Wilcoxon's original procedure and scipy's default.
      It keeps the p-value and the effect size on the same set of pairs (the
      rank-biserial below drops zeros too) and lets the exact null distribution
      of the signed-rank statistic apply to the ``n_nonzero`` pairs. ``"pratt"``
      (rank zeros, then drop their ranks) is available; it is not uniformly more
      conservative, and with few seeds the difference is small.
    * ``method``: ``"exact"`` when ``n_nonzero <= 50`` and there are no ties
      among ``|d|`` and no zeros (the exact signed-rank distribution is valid
      only then); otherwise ``"auto"``, with which scipy 1.17 uses an exhaustive
      permutation distribution for ``len(d) <= 13`` and the (tie-corrected)
      normal approximation above.

    Returns ``dict(statistic, pvalue, n, n_nonzero, rank_biserial, mean_diff,
    method, note)``: ``statistic`` is scipy's (min of T+, T-), ``n`` the number
    of pairs, ``rank_biserial`` = ``(T+ - T-)/(T+ + T-)`` computed by hand
    (positive = x larger), ``mean_diff`` = mean of ``x - y``. Notes:
    ``"all differences zero"`` (then ``pvalue=1.0, statistic=0.0,
    rank_biserial=0.0``, no scipy call); ``"n<6: no two-sided p can reach
    0.05"`` when ``n_nonzero < 6`` (p is still computed); ``"no pairs"``.
    """
    from scipy.stats import wilcoxon

    if zero_method not in ("wilcox", "pratt"):
        raise ValueError("zero_method must be 'wilcox' or 'pratt'")
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same length; got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    notes = [] if keep.all() else [f"dropped {int((~keep).sum())} non-finite pairs"]
    a, b = a[keep], b[keep]
    d = np.round(a - b, DIFF_DECIMALS)
    n = int(d.size)
    n_nonzero = int(np.count_nonzero(d))
    nan = float("nan")
    out = {"statistic": nan, "pvalue": nan, "n": n, "n_nonzero": n_nonzero,
           "rank_biserial": nan, "mean_diff": nan, "method": ""}
    if n == 0:
        out["note"] = _join(*notes, "no pairs")
        return out
    out["mean_diff"] = float(np.mean(a - b))
    if n_nonzero == 0:
        out.update(statistic=0.0, pvalue=1.0, rank_biserial=0.0)
        out["note"] = _join(*notes, "all differences zero")
        return out
    nz = d[d != 0]
    has_ties = np.unique(np.abs(nz)).size < nz.size
    has_zeros = n_nonzero < n
    method = "exact" if (n_nonzero <= 50 and not has_ties and not has_zeros) else "auto"
    tp, tm = _signed_rank_sums(d, zero_method)
    if method == "auto" and n <= PERMUTATION_MAX_N:
        # what scipy's "auto" does here (ties or zeros, n <= 13), with a vectorised statistic: scipy's own
        # call evaluates the signed-rank sum once per sign pattern in Python (2^n calls per test)
        statistic, pvalue = min(tp, tm), _signed_rank_permutation_pvalue(d, zero_method)
    else:
        with warnings.catch_warnings():
            # degenerate-but-valid inputs (tiny n) must not leak warnings
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            res = wilcoxon(d, zero_method=zero_method, alternative="two-sided", method=method)
        statistic, pvalue = res.statistic, res.pvalue
    out.update(
        statistic=float(statistic),
        pvalue=float(pvalue),
        rank_biserial=(tp - tm) / (tp + tm) if tp + tm > 0 else 0.0,
        method=method,
    )
    if n_nonzero < 6:
        notes.append("n<6: no two-sided p can reach 0.05")
    out["note"] = _join(*notes)
    return out


PERMUTATION_MAX_N = 13  # scipy.stats.wilcoxon(method="auto") enumerates all 2^n sign patterns up to here


def _signed_rank_permutation_pvalue(d: np.ndarray, zero_method: str) -> float:
    """Two-sided p of T+ under all 2^n sign flips of d: scipy.stats.wilcoxon(method="auto")'s permutation
    branch (same scipy.stats.permutation_test call and tolerance), with the statistic vectorised. |d| and so
    its ranks do not change under sign flips; zeros carry no rank (wilcox) or a dropped one (pratt)."""
    from scipy.stats import permutation_test

    ranks = _abs_ranks(d, zero_method)

    def positive_rank_sum(sample, axis=-1):
        return np.sum((sample > 0) * ranks, axis=axis)

    res = permutation_test((d,), positive_rank_sum, permutation_type="samples", vectorized=True,
                           n_resamples=9999, alternative="two-sided")
    return float(res.pvalue)


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (same order as the input).

    With the ``m`` finite p-values sorted ascending ``p_(1) <= ... <= p_(m)``:
    ``p~_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))`` (monotone, capped at 1).
    NaNs stay NaN and do not count toward ``m``. Ties keep their input order
    (stable sort), which does not change the adjusted values.
    """
    p = np.asarray(list(pvalues) if not isinstance(pvalues, np.ndarray) else pvalues,
                   dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="mergesort")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------
_REQUIRED = ("dataset", "scenario", "setting", "method", "seed", "metric", "value")


def _check_long(long_df):
    missing = [c for c in _REQUIRED if c not in long_df.columns]
    if missing:
        raise ValueError(f"long_df is missing columns {missing}")
    dup = long_df.duplicated(subset=["dataset", "scenario", "setting", "method", "metric", "seed"])
    if dup.any():
        raise ValueError(
            "long_df has duplicate (dataset, scenario, setting, method, metric, seed) rows:\n"
            f"{long_df[dup].head()}"
        )


def compare_table(
    long_df,
    *,
    reference_method: str = "retrain",
    reference_setting: str = "standard",
    families: Sequence[str] = ("vs_retrain", "vs_standard"),
    variant_settings: Sequence[str] = ("sparsity", "uib"),
    alpha: float = 0.05,
    zero_method: str = "wilcox",
):
    """Paired Wilcoxon comparisons with Holm correction within families.

    For each ``(dataset, scenario, metric)``:

    * family ``"vs_retrain"``: every ``(setting, method)`` other than the
      reference ``(reference_setting, reference_method)`` is paired *by seed*
      with the reference (inner join on ``seed``) and tested with
      :func:`paired_wilcoxon` (``x`` = method, ``y`` = reference, so positive
      ``mean_diff``/``rank_biserial`` = method higher). ``reference`` column =
      ``"standard/retrain"``.
    * family ``"vs_standard"``: for ``setting in variant_settings``, each
      ``(setting, X)`` vs ``(reference_setting, X)`` when the latter exists;
      ``reference`` = ``"standard/X"``.

    Holm's correction is applied within each family
    ``(dataset, scenario, metric, family)``; NaN p-values (no pairs) are left
    out of the family size. ``significant = pvalue_holm < alpha``.
    Returns a DataFrame with :data:`COMPARE_COLUMNS` (plus nothing else).
    """
    import pandas as pd

    _check_long(long_df)
    unknown = set(families) - {"vs_retrain", "vs_standard"}
    if unknown:
        raise ValueError(f"unknown families {sorted(unknown)}")
    rows = []
    for (dataset, scenario, metric), g in long_df.groupby(
        ["dataset", "scenario", "metric"], sort=True, dropna=False
    ):
        series = {
            key: sub.set_index("seed")["value"].astype(float)
            for key, sub in g.groupby(["setting", "method"], sort=True, dropna=False)
        }
        pairs = []  # (family, (setting, method), reference key)
        ref_key = (reference_setting, reference_method)
        if "vs_retrain" in families and ref_key in series:
            pairs += [("vs_retrain", k, ref_key) for k in series if k != ref_key]
        if "vs_standard" in families:
            for k in series:
                if k[0] in variant_settings and (reference_setting, k[1]) in series:
                    pairs.append(("vs_standard", k, (reference_setting, k[1])))
        for family, key, rkey in pairs:
            xs, ys = series[key].align(series[rkey], join="inner")
            res = paired_wilcoxon(xs.to_numpy(), ys.to_numpy(), zero_method=zero_method)
            rows.append({
                "dataset": dataset, "scenario": scenario, "metric": metric,
                "family": family, "setting": key[0], "method": key[1],
                "reference": f"{rkey[0]}/{rkey[1]}", "n": res["n"],
                "statistic": res["statistic"], "pvalue": res["pvalue"],
                "rank_biserial": res["rank_biserial"], "mean_diff": res["mean_diff"],
                "note": res["note"],
            })
    df = pd.DataFrame(rows, columns=[c for c in COMPARE_COLUMNS
                                     if c not in ("pvalue_holm", "significant")])
    if df.empty:
        df["pvalue_holm"] = pd.Series(dtype=float)
        df["significant"] = pd.Series(dtype=bool)
        return df[list(COMPARE_COLUMNS)]
    df["pvalue_holm"] = np.nan
    for _, idx in df.groupby(["dataset", "scenario", "metric", "family"], dropna=False).groups.items():
        df.loc[idx, "pvalue_holm"] = holm(df.loc[idx, "pvalue"].to_numpy(dtype=float))
    df["significant"] = (df["pvalue_holm"] < alpha).fillna(False).astype(bool)
    df["n"] = df["n"].astype(int)
    return df[list(COMPARE_COLUMNS)].reset_index(drop=True)


#: Metric names that hold p-values: an average (or bootstrap CI) of per-seed p-values is not a p-value, so
#: summary_table refuses them. A test combined over seeds belongs in compare_table (stats.csv).
PVALUE_NAME = r"(^|_)(p|pval|pvalue|p_value)(_|$)|pvalue"


def is_pvalue_metric(name: str) -> bool:
    import re

    return re.search(PVALUE_NAME, str(name).lower()) is not None


def summary_table(
    long_df,
    *,
    seed: int,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
):
    """One row per ``(dataset, scenario, setting, method, metric)`` with :func:`summarize`.

    Raises ValueError if a metric is a p-value (its name matches :data:`PVALUE_NAME`): averaging per-seed
    p-values over seeds gives no valid test.

    Values are ordered by ``seed`` before bootstrapping so the result does not
    depend on row order; every group uses the same bootstrap ``seed``.
    Columns: the five keys, then ``n, mean, std, ci_low, ci_high, t_low,
    t_high, note``.
    """
    import pandas as pd

    _check_long(long_df)
    pvalues = sorted(m for m in long_df["metric"].unique() if is_pvalue_metric(m))
    if pvalues:
        raise ValueError(f"summary_table: metrics {pvalues} are p-values; a mean of per-seed p-values is not a "
                         f"p-value. Store a per-seed statistic instead and test it over seeds (compare_table)")
    rows = []
    for key, g in long_df.groupby(list(KEYS), sort=True, dropna=False):
        vals = g.sort_values("seed")["value"].to_numpy(dtype=float)
        s = summarize(vals, seed=seed, n_resamples=n_resamples, confidence=confidence)
        rows.append({**dict(zip(KEYS, key)), **{c: s[c] for c in SUMMARY_COLUMNS}})
    return pd.DataFrame(rows, columns=list(KEYS) + list(SUMMARY_COLUMNS))
