"""The population stage's metrics (evaluation.population; docs/forget_quality.md).

- The challenge's per-example ε and forget score, KLoM's binned KL, the logit-scaled confidence and ZRF equal their
  reference code's outputs on the same arrays. The reference outputs are pinned in tests/data/population_reference.json
  by benchmarks/population_reference.py (its docstring has the commands; the checkouts are not needed here): the
  inputs are regenerated from the benchmark's seeds.
- U-LiRA: on synthetic Gaussian populations the AUC and TPR at fixed FPR match the binormal closed form; two draws of
  the same population sit at chance; each target is scored by fits that exclude it (checked against fits made by
  hand), and leaving it in would have moved its score.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from unlearnbench.evaluation import population as pop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import population_reference as ref_cases  # noqa: E402

PINNED = json.loads((ROOT / "tests" / "data" / "population_reference.json").read_text())


@pytest.mark.parametrize("case", sorted(ref_cases.CASES))
def test_challenge_epsilons_and_score_equal_the_reference(case):
    assert PINNED["cases"][case]["definition"] == list(ref_cases.CASES[case])
    unlearned, retrained = ref_cases.population(case)
    score, eps, points = pop.forget_score(unlearned, retrained)
    assert np.array_equal(eps.astype(np.float64), np.asarray(PINNED["cases"][case]["epsilons"]))
    assert score == PINNED["cases"][case]["score"]
    assert np.allclose(pop.klom(unlearned, retrained), PINNED["cases"][case]["klom"], rtol=0, atol=1e-12)


def test_logit_scaled_confidence_and_zrf_equal_the_reference():
    logits, labels = ref_cases.logits_case()
    assert np.array_equal(pop.logit_scaled_confidence(logits, labels), np.asarray(PINNED["confidence"]))
    for entry in PINNED["zrf"]:
        model, teacher = ref_cases.zrf_case(entry["seed"], entry["scale"])
        assert abs(pop.zrf(model, teacher) - entry["value"]) < 1e-6, entry


def test_the_single_threshold_grid_is_torchs_float32_linspace():
    """torch.linspace in float32 as its CUDA kernel computes it (the challenge ran on GPUs): per element, start + step *
    i in the first half and end - step * (steps - 1 - i) in the second. Its CPU kernel builds vectors of 8 by adding
    steps to a base, which moves some elements by one unit in the last place (of the operands): the grids agree to that."""
    import torch

    rng = np.random.default_rng(0)
    for _ in range(200):
        lo, hi = sorted(rng.normal(0, 20, 2))
        steps = int(rng.integers(1, 5000))
        expected = torch.linspace(torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64),
                                  steps).numpy()
        got = pop._float32_linspace(lo, hi, steps)
        assert got.dtype == expected.dtype == np.float32 and got[0] == expected[0] and got[-1] == expected[-1]
        ulp = np.spacing(np.float32(max(abs(lo), abs(hi))))  # rounding at the operands' magnitude
        assert np.all(np.abs(got - expected) <= ulp), (lo, hi, steps)
        assert np.mean(got == expected) > 0.5


def test_the_same_distribution_scores_about_the_released_value_and_a_shift_scores_less():
    """Two draws of one distribution: ~0.17 at every N (not 1); a one-s.d. shift: lower, falling with N."""
    rng = np.random.default_rng(0)
    same = [pop.forget_score(rng.standard_normal((n, 60)), rng.standard_normal((n, 60)))[0] for n in (16, 64)]
    shifted = [pop.forget_score(rng.standard_normal((n, 60)) + 1, rng.standard_normal((n, 60)))[0] for n in (16, 64)]
    assert all(0.1 < s < 0.25 for s in same), same
    assert shifted[0] < same[0] and shifted[1] < shifted[0], shifted


def test_bucket_points_follow_the_challenges_halving_schedule():
    # N = 64: buckets up to ceil(log 63) = 5, i.e. [0, .5) -> 1, [.5, 1) -> 1/2, [1, 1.5) -> 1/4, ..., [4.5, 5) -> 1/512, beyond -> 0
    eps = np.array([0.0, 0.49, 0.5, 1.2, 4.9, 5.0, 50.0], np.float32)
    assert pop.bucket_points(eps, 64).tolist() == [1, 1, 0.5, 0.25, 1 / 512, 0, 0]


def test_ulira_matches_the_binormal_closed_form():
    """U ~ N(mu + d, s), R ~ N(mu, s) per example (equal variances: the LR is monotone, the ROC binormal): AUC =
    Phi(d / sqrt 2), TPR at FPR a = 1 - Phi(Phi^-1(1 - a) - d). Tolerances: sampling error at 128 models x 200
    examples, and the fitted (not true) parameters."""
    rng = np.random.default_rng(1)
    n, e, d = 128, 200, 2.0
    mu, s = rng.normal(0, 3, e), rng.uniform(0.5, 2, e)
    u = mu + s * (d + rng.standard_normal((n, e)))
    r = mu + s * rng.standard_normal((n, e))
    on_u, on_r = pop.ulira_scores(u, r, variance="per_example")
    got = pop.roc_summary(on_u, on_r, fprs=(0.01, 0.1))
    assert abs(got["auc"] - stats.norm.cdf(d / np.sqrt(2))) < 0.01, got
    for level, key in ((0.01, "tpr_at_1pct_fpr"), (0.1, "tpr_at_10pct_fpr")):
        assert abs(got[key] - (1 - stats.norm.cdf(stats.norm.ppf(1 - level) - d))) < 0.04, (key, got)
    assert abs(got["balanced_accuracy"] - stats.norm.cdf(d / 2)) < 0.01, got


@pytest.mark.parametrize("variance", ["per_example", "global"])
@pytest.mark.parametrize("n", [4, 16])
def test_two_draws_of_the_retrained_population_sit_at_chance(n, variance):
    rng = np.random.default_rng(n)
    e = 400
    mu, s = rng.normal(0, 3, e), rng.uniform(0.5, 2, e)
    a, b = (mu + s * rng.standard_normal((n, e)) for _ in range(2))
    got = pop.roc_summary(*pop.ulira_scores(a, b, variance=variance))
    assert abs(got["auc"] - 0.5) < 0.03, got


def test_each_target_is_scored_by_fits_that_exclude_it():
    """Scores recomputed from fits made by hand on the other N - 1 models of each population; including the target
    in its own fit would move its score (so the comparison would fail)."""
    rng = np.random.default_rng(3)
    u, r = rng.normal(1, 1, (6, 5)), rng.normal(0, 1, (6, 5))
    on_u, on_r = pop.ulira_scores(u, r)
    for t in range(6):
        keep = np.arange(6) != t
        um, uv = u[keep].mean(0), u[keep].var(0, ddof=1)
        rm, rv = r[keep].mean(0), r[keep].var(0, ddof=1)
        by_hand_u = stats.norm.logpdf(u[t], um, np.sqrt(uv)) - stats.norm.logpdf(u[t], rm, np.sqrt(rv))
        by_hand_r = stats.norm.logpdf(r[t], um, np.sqrt(uv)) - stats.norm.logpdf(r[t], rm, np.sqrt(rv))
        assert np.allclose(on_u[t], by_hand_u) and np.allclose(on_r[t], by_hand_r)
        with_target = stats.norm.logpdf(u[t], u.mean(0), u.std(0, ddof=1)) - stats.norm.logpdf(u[t], rm, np.sqrt(rv))
        assert not np.allclose(on_u[t], with_target)


def test_roc_counts_ties_once_and_spans_the_square():
    fpr, tpr = pop.roc(np.array([3.0, 2.0, 2.0, 0.0]), np.array([2.0, 1.0, 0.0, -1.0]))
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert pop.roc_summary(np.array([1.0, 1.0]), np.array([1.0, 1.0]))["auc"] == 0.5


def test_klom_is_zero_for_equal_samples_and_grows_with_separation():
    rng = np.random.default_rng(4)
    a = rng.normal(0, 1, (64, 3))
    assert np.allclose(pop.klom(a, a), 0)
    near, far = pop.klom(a + 0.2, a).mean(), pop.klom(a + 3, a).mean()
    assert 0 < near < far


def test_distances_and_zrf_forms():
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 3, (20, 10))
    p = pop.softmax(logits)
    assert np.allclose(pop.js_divergence(p, p), 0) and np.allclose(pop.activation_distance(p, p), 0)
    one_hot = np.eye(10)[[0] * 5]
    assert np.allclose(pop.js_divergence(one_hot, np.eye(10)[[1] * 5]), 1)  # disjoint supports: 1 bit
    assert pop.zrf(logits, logits) == pytest.approx(1.0) and pop.zrf(logits, logits, form="js") == pytest.approx(1.0)
    assert pop.zrf(logits * 5, -logits, form="js") < pop.zrf(logits * 0.01, -logits * 0.01, form="js")


def test_the_stage_is_configured_checked_and_can_be_turned_off():
    """The default's block parses into Plan.population; `--config population=` (None) turns it off. (Bad values stop
    before any job naming the key: tests/test_faults.py's bad-config cases.)"""
    import copy

    import yaml

    from unlearnbench.config.plan import parse
    from unlearnbench.config.validation import validate

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate(config, ROOT / "config" / "schema.yaml")
    plan = parse(copy.deepcopy(config))
    assert plan.population["size"] == 16 and plan.population["protocol"] == "shadow"
    assert [(e["dataset"], e["scenario"]) for e in plan.population["experiments"]] == [("digits", "random_n")]
    off = copy.deepcopy(config)
    off["population"] = None
    validate(off, ROOT / "config" / "schema.yaml")  # what the Snakefile runs
    assert parse(off).population is None
