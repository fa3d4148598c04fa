"""Tests for unlearnbench.evaluation.stats: agreement with scipy, hand examples, degenerate cases."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from unlearnbench.evaluation import stats as S

# every warning raised inside these tests is an error (degenerate cases must be quiet)
pytestmark = pytest.mark.filterwarnings("error")

VALUES = np.array([71.2, 73.5, 70.1, 74.8, 72.0, 69.9, 73.1])


# ---------------------------------------------------------------------------
# summarize
# ---------------------------------------------------------------------------
def test_summarize_matches_scipy():
    r = S.summarize(VALUES, seed=123, n_resamples=2000)
    ref = st.bootstrap((VALUES,), np.mean, n_resamples=2000, vectorized=True,
                       method="BCa", confidence_level=0.95,
                       rng=np.random.default_rng(123))
    assert r["n"] == 7
    assert r["mean"] == pytest.approx(VALUES.mean())
    assert r["std"] == pytest.approx(VALUES.std(ddof=1))
    assert r["ci_low"] == ref.confidence_interval.low
    assert r["ci_high"] == ref.confidence_interval.high
    lo, hi = st.t.interval(0.95, 6, loc=VALUES.mean(), scale=st.sem(VALUES))
    assert r["t_low"] == pytest.approx(lo) and r["t_high"] == pytest.approx(hi)
    assert r["ci_low"] < r["mean"] < r["ci_high"]
    assert r["note"] == ""
    # seeded: same seed -> same CI, other seed -> (almost surely) different
    assert S.summarize(VALUES, seed=123, n_resamples=2000)["ci_low"] == r["ci_low"]
    assert S.summarize(VALUES, seed=7, n_resamples=2000)["ci_low"] != r["ci_low"]


def test_summarize_confidence_level():
    r90 = S.summarize(VALUES, seed=0, n_resamples=2000, confidence=0.90)
    r99 = S.summarize(VALUES, seed=0, n_resamples=2000, confidence=0.99)
    assert r99["t_high"] - r99["t_low"] > r90["t_high"] - r90["t_low"]
    assert r99["ci_high"] - r99["ci_low"] > r90["ci_high"] - r90["ci_low"]


def test_summarize_n1():
    r = S.summarize([5.0], seed=0)
    assert r["n"] == 1 and r["mean"] == 5.0
    assert all(math.isnan(r[k]) for k in ("std", "ci_low", "ci_high", "t_low", "t_high"))
    assert r["note"] == "n=1"


def test_summarize_constant_no_warning():
    r = S.summarize([0.25, 0.25, 0.25, 0.25], seed=0)
    assert r["std"] == 0.0
    assert (r["ci_low"], r["ci_high"]) == (0.25, 0.25)
    assert (r["t_low"], r["t_high"]) == (0.25, 0.25)
    assert r["note"] == "constant"


def test_summarize_drops_nan():
    r = S.summarize([1.0, np.nan, 3.0, np.inf, 2.0], seed=0, n_resamples=1000)
    assert r["n"] == 3
    assert r["mean"] == pytest.approx(2.0)
    assert "dropped 2 non-finite" in r["note"]
    r = S.summarize([np.nan, np.nan], seed=0)
    assert r["n"] == 0 and math.isnan(r["mean"])


def test_summarize_tiny_samples_quiet():
    # n=2 and two-valued samples: BCa may be undefined; no warning must escape
    for vals in ([1.0, 2.0], [1.0, 1.0, 1.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]):
        r = S.summarize(vals, seed=0, n_resamples=1000)
        assert np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"])
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]


# ---------------------------------------------------------------------------
# paired wilcoxon / rank-biserial
# ---------------------------------------------------------------------------
def test_paired_wilcoxon_matches_scipy_exact():
    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 1.0, 12)
    y = rng.normal(0.0, 1.0, 12)
    r = S.paired_wilcoxon(x, y)
    ref = st.wilcoxon(x, y, method="exact")
    assert r["method"] == "exact"
    assert r["pvalue"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert r["statistic"] == ref.statistic
    assert r["n"] == 12 and r["n_nonzero"] == 12
    assert r["mean_diff"] == pytest.approx(np.mean(x - y))


def test_paired_wilcoxon_with_ties_and_zeros_matches_scipy_auto():
    x = np.array([3.0, 5.0, 2.0, 8.0, 4.0, 6.0, 7.0, 9.0])
    y = np.array([1.0, 3.0, 2.0, 5.0, 1.0, 2.0, 8.0, 4.0])  # d: 2,2,0,3,3,4,-1,5
    r = S.paired_wilcoxon(x, y)
    assert r["method"] == "auto"
    assert r["n"] == 8 and r["n_nonzero"] == 7
    ref = st.wilcoxon(x - y, zero_method="wilcox", method="auto")
    assert r["pvalue"] == pytest.approx(ref.pvalue)
    # rank-biserial by hand (zeros dropped): |d| = 2,2,3,3,4,1,5
    # ranks: 1->1, 2,2->2.5,2.5, 3,3->4.5,4.5, 4->6, 5->7;  T- = 1, T+ = 27
    assert r["rank_biserial"] == pytest.approx((27 - 1) / 28)


def test_rank_biserial_hand_example():
    # d = (4, -1, 2, 3): ranks of |d| = 4, 1, 2, 3 -> T+ = 9, T- = 1 -> r = 0.8
    assert S.rank_biserial([4.0, -1.0, 2.0, 3.0]) == pytest.approx(0.8)
    r = S.paired_wilcoxon([5.0, 1.0, 4.0, 6.0], [1.0, 2.0, 2.0, 3.0])
    assert r["rank_biserial"] == pytest.approx(0.8)
    assert S.rank_biserial([1.0, 2.0, 3.0]) == 1.0
    assert S.rank_biserial([-1.0, -2.0]) == -1.0
    # pratt: zeros are ranked then dropped: d = (0, 1, -2) -> ranks 1,2,3 -> (2-3)/5
    assert S.rank_biserial([0.0, 1.0, -2.0], zero_method="pratt") == pytest.approx(-0.2)
    assert S.rank_biserial([0.0, 1.0, -2.0]) == pytest.approx((1 - 2) / 3)


def test_paired_wilcoxon_all_zero_diffs():
    r = S.paired_wilcoxon([0.9, 0.8, 0.7], [0.9, 0.8, 0.7])
    assert r["pvalue"] == 1.0 and r["statistic"] == 0.0 and r["rank_biserial"] == 0.0
    assert r["mean_diff"] == 0.0
    assert r["note"] == "all differences zero"


def test_paired_wilcoxon_roundoff_is_zero():
    # 0.1 + 0.2 != 0.3 in floating point; the rounded difference is exactly zero
    r = S.paired_wilcoxon([0.1 + 0.2, 1.0], [0.3, 1.0])
    assert r["note"] == "all differences zero"


def test_paired_wilcoxon_small_n_note():
    r = S.paired_wilcoxon([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert r["n"] == 3
    assert r["pvalue"] == pytest.approx(0.25)  # 2 / 2**3, exact
    assert "n<6" in r["note"]
    assert r["rank_biserial"] == 1.0
    # n = 6 all positive: smallest two-sided exact p = 2/64 < 0.05, no note
    r6 = S.paired_wilcoxon(np.arange(1.0, 7.0), np.zeros(6))
    assert r6["pvalue"] == pytest.approx(2 / 64)
    assert r6["note"] == ""


def test_paired_wilcoxon_nan_pairs_and_mismatch():
    r = S.paired_wilcoxon([1.0, np.nan, 3.0, 4.0], [0.0, 1.0, 1.0, 1.0])
    assert r["n"] == 3 and "dropped 1 non-finite" in r["note"]
    with pytest.raises(ValueError):
        S.paired_wilcoxon([1.0, 2.0], [1.0])
    r = S.paired_wilcoxon([], [])
    assert r["n"] == 0 and math.isnan(r["pvalue"]) and "no pairs" in r["note"]


# ---------------------------------------------------------------------------
# holm
# ---------------------------------------------------------------------------
def test_holm_hand_example():
    np.testing.assert_allclose(S.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_nan_cap_monotone():
    adj = S.holm([0.01, np.nan, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(adj, [0.03, np.nan, 0.06, 0.06, 0.02, np.nan])
    assert list(S.holm([0.5, 0.6, 0.9])) == [1.0, 1.0, 1.0]
    # monotone in the sorted p-values
    p = np.random.default_rng(0).uniform(0, 0.2, 30)
    adj = S.holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0)
    assert np.all(adj >= p)
    assert S.holm([]).size == 0
    assert np.isnan(S.holm([np.nan])).all()


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------
def _long_df():
    rng = np.random.default_rng(0)
    rows = []
    seeds = range(8)
    cfg = {
        ("standard", "retrain"): 0.0,
        ("standard", "ft"): 5.0,
        ("standard", "ssd"): 0.0,
        ("sparsity", "ft"): 5.0,
        ("uib", "ssd"): -3.0,
        ("uib", "newmethod"): 1.0,  # no standard counterpart -> no vs_standard row
    }
    for (setting, method), shift in cfg.items():
        for s in seeds:
            for metric, base in (("acc_forget", 80.0), ("mia", 0.5)):
                rows.append({"dataset": "cifar10", "scenario": "random", "setting": setting,
                             "method": method, "seed": s, "metric": metric,
                             "value": base + shift + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


def test_compare_table_structure_and_values():
    df = _long_df()
    out = S.compare_table(df)
    assert list(out.columns) == list(S.COMPARE_COLUMNS)
    vr = out[out.family == "vs_retrain"]
    vs = out[out.family == "vs_standard"]
    # 5 non-reference configs x 2 metrics
    assert len(vr) == 10
    assert set(zip(vs.setting, vs.method)) == {("sparsity", "ft"), ("uib", "ssd")}
    assert len(vs) == 4
    assert set(vs.reference) == {"standard/ft", "standard/ssd"}
    assert set(vr.reference) == {"standard/retrain"}
    ft = vr[(vr.setting == "standard") & (vr.method == "ft") & (vr.metric == "mia")].iloc[0]
    assert ft.n == 8 and ft.mean_diff == pytest.approx(5.0, abs=0.05)
    assert ft.rank_biserial == 1.0
    assert ft.pvalue == pytest.approx(2 / 256)
    # Holm within the vs_retrain family of (cifar10, random, mia): 5 tests
    fam = vr[vr.metric == "mia"]
    np.testing.assert_allclose(fam.pvalue_holm, S.holm(fam.pvalue))
    assert bool(ft.significant)
    # direct check against paired_wilcoxon
    uib = vs[(vs.method == "ssd") & (vs.metric == "acc_forget")].iloc[0]
    x = df[(df.setting == "uib") & (df.method == "ssd") & (df.metric == "acc_forget")].sort_values("seed")
    y = df[(df.setting == "standard") & (df.method == "ssd") & (df.metric == "acc_forget")].sort_values("seed")
    ref = S.paired_wilcoxon(x.value.to_numpy(), y.value.to_numpy())
    assert uib.pvalue == ref["pvalue"] and uib.mean_diff == pytest.approx(-3.0, abs=0.05)
    only = S.compare_table(df, families=("vs_retrain",))
    assert set(only.family) == {"vs_retrain"}


def test_compare_table_pairs_by_seed():
    df = _long_df()
    # drop seeds 0-2 of one method: it must be paired on the remaining 5 seeds only
    df = df[~((df.method == "ft") & (df.setting == "standard") & (df.seed < 3))]
    # shuffle row order: pairing is by seed, not by position
    df = df.sample(frac=1.0, random_state=1)
    out = S.compare_table(df)
    row = out[(out.family == "vs_retrain") & (out.setting == "standard")
              & (out.method == "ft") & (out.metric == "mia")].iloc[0]
    assert row.n == 5
    assert row.mean_diff == pytest.approx(5.0, abs=0.05)
    assert "n<6" in row.note
    dup = pd.concat([df, df.iloc[:1]])
    with pytest.raises(ValueError):
        S.compare_table(dup)


def test_summary_table():
    df = _long_df()
    out = S.summary_table(df, seed=0, n_resamples=500)
    assert list(out.columns) == list(S.KEYS) + list(S.SUMMARY_COLUMNS)
    assert len(out) == 12
    row = out[(out.setting == "standard") & (out.method == "ft") & (out.metric == "mia")].iloc[0]
    vals = df[(df.setting == "standard") & (df.method == "ft") & (df.metric == "mia")]
    ref = S.summarize(vals.sort_values("seed").value.to_numpy(), seed=0, n_resamples=500)
    assert row.n == 8
    for k in ("mean", "std", "ci_low", "ci_high", "t_low", "t_high"):
        assert row[k] == pytest.approx(ref[k])
    # independent of row order
    out2 = S.summary_table(df.sample(frac=1.0, random_state=3), seed=0, n_resamples=500)
    pd.testing.assert_frame_equal(out, out2)


def test_summarize_bca_fallback_to_percentile(monkeypatch):
    import warnings

    import scipy.stats

    real = scipy.stats.bootstrap

    def fake(*args, method="BCa", **kwargs):
        if method == "BCa":
            warnings.warn("The BCa confidence interval cannot be calculated.", RuntimeWarning)
        return real(*args, method=method, **kwargs)

    monkeypatch.setattr(scipy.stats, "bootstrap", fake)
    r = S.summarize(VALUES, seed=5, n_resamples=1000)  # no warning escapes
    ref = real((VALUES,), np.mean, n_resamples=1000, vectorized=True, method="percentile",
               rng=np.random.default_rng(5))
    assert r["ci_low"] == ref.confidence_interval.low
    assert r["ci_high"] == ref.confidence_interval.high
    assert "percentile" in r["note"]


@pytest.mark.slow
@pytest.mark.parametrize("zero_method", ["wilcox", "pratt"])
def test_vectorised_permutation_branch_matches_scipy_on_many_tied_samples(zero_method):
    """Ties or zeros with n <= 13: our vectorised permutation p equals scipy.stats.wilcoxon(method="auto")."""
    import warnings

    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(60):
        n = int(rng.integers(2, 14))
        x, y = rng.integers(0, 4, n) / 4.0, rng.integers(0, 4, n) / 4.0
        d = np.round(x - y, 10)
        if not np.count_nonzero(d):
            continue
        ours = S.paired_wilcoxon(x, y, zero_method=zero_method)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = st.wilcoxon(d, zero_method=zero_method, method="auto")
        assert ours["pvalue"] == pytest.approx(ref.pvalue, abs=1e-12)
        assert ours["statistic"] == pytest.approx(ref.statistic)
        checked += 1
    assert checked > 40
