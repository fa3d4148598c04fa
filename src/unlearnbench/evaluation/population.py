"""Per-example forgetting quality from populations of models (the population stage, docs/forget_quality.md).

Inputs are arrays of shape [models, examples]: one value per (population member, forget example), read from the
members' saved per-example logits, so a new attack never retrains anything. Three families:

- the NeurIPS 2023 unlearning challenge's forget score (google-deepmind/unlearning_evaluation, metric.py @ ffae0ff):
  logit-scaled confidences, a per-example ε from the single- and double-threshold decision-rule families at
  δ = 1e-5 (capped at 50), bucketed per-example points, averaged over the forget set; the final score multiplies by
  the retain and test accuracy ratios (main.py). Our implementation counts with sorted arrays instead of
  [models x thresholds] masks, on the reference's own threshold grids and in its dtypes (the single-threshold grid
  is torch.linspace's float32 grid, the rates are float32), so the per-example ε are equal to the reference's
  (benchmarks/reference_equality.py, tests/test_population.py);
- U-LiRA (Hayes et al., arXiv 2403.01218): per example, Gaussians fitted to the logit-scaled confidences of the
  unlearned and the retrained populations with the target left out (and its pair in the other population, so both
  fits rest on N - 1 models), the likelihood ratio as the score, and the ROC over every (example, target) pair;
- KLoM (Georgiev et al. 2024; RoyRin/data-unlearning-bench eval.py): per example, the binned KL divergence of the
  unlearned from the oracle margin distribution;
and behavioural distances between paired unlearned and retrained models (activation distance, Jensen-Shannon), and
ZRF against an incompetent (randomly initialised) teacher (Chundawat et al. 2023).

numpy and scipy only (the aggregation process imports no torch).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .metrics import softmax  # noqa: F401  (the distances' row softmax; re-exported)

DELTA = 1e-5
EPSILON_CAP = 50.0
THRESHOLDS_PER_UNIT = 100
BUCKET = 0.5


# ------------------------------------------------------------------------------------------- confidences

def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """log p_y - log(1 - p_y) per example (float64), with the challenge's numerics: the max logit subtracted and the
    exponential taken in the logits' own dtype (float32 for saved outputs), the normalisation in float64, and 1e-45
    added inside both logs. Mathematically it equals the margin z_y - logsumexp_{j!=y} z_j."""
    z = np.asarray(logits)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z).astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(p))
    correct = p[rows, labels].copy()
    p[rows, labels] = 0.0
    return np.log(correct + 1e-45) - np.log(p.sum(axis=1) + 1e-45)


def margins(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """KLoM's margin: z_y - logsumexp of the other logits (float64, computed stably)."""
    z = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(z))
    correct = z[rows, labels]
    other = z.copy()
    other[rows, labels] = -np.inf
    top = other.max(axis=1, keepdims=True)
    return correct - (top[:, 0] + np.log(np.exp(other - top).sum(axis=1)))


# ---------------------------------------------------------------------------------- the challenge's score

def _float32_linspace(start: float, end: float, steps: int) -> np.ndarray:
    """torch.linspace(start, end, steps) in float32 (torch's default dtype) as its CUDA kernel computes it (the
    challenge ran on GPUs): step (end - start) / (steps - 1), the first half counted up from start and the second
    half down from end, per element in float32. (torch's CPU kernel adds steps to a base per vector of 8, which
    moves some elements by 1 ulp.)"""
    start, end = np.float32(start), np.float32(end)
    if steps <= 0:
        return np.zeros(0, np.float32)
    if steps == 1:
        return np.array([start], np.float32)
    step = np.float32((end - start) / np.float32(steps - 1))
    i = np.arange(steps)
    up = start + step * i.astype(np.float32)
    down = end - step * (steps - 1 - i).astype(np.float32)
    return np.where(i < steps // 2, up, down).astype(np.float32)


def _rates(pos_in: np.ndarray, neg_in: np.ndarray, n: int) -> tuple:
    """(tpr, fnr, fpr, tnr) in float32 from counts of predicted positives."""
    n32 = np.float32(n)
    tpr = pos_in.astype(np.float32) / n32
    fpr = neg_in.astype(np.float32) / n32
    return tpr, (n - pos_in).astype(np.float32) / n32, fpr, (n - neg_in).astype(np.float32) / n32


def _count_at_least(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return len(sorted_values) - np.searchsorted(sorted_values, thresholds, side="left")


def _count_between(sorted_values: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """#values with left <= v <= right."""
    return np.searchsorted(sorted_values, right, side="right") - np.searchsorted(sorted_values, left, side="left")


def _double_threshold_rates(pos: np.ndarray, neg: np.ndarray):
    """The double-threshold family: confidences between two thresholds are predicted to come from the peakier
    (smaller-range) distribution, which is the positive class of this family."""
    pos_range, neg_range = pos.max() - pos.min(), neg.max() - neg.min()
    width = neg_range if pos_range > neg_range else pos_range
    if pos_range >= neg_range:
        pos, neg = neg, pos
    buffer = 2.0
    lo, hi = pos.min() + width - buffer, pos.max() + buffer
    right = np.linspace(lo, hi, num=int(np.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    n_left = int(np.ceil(2 * buffer * THRESHOLDS_PER_UNIT))
    left = np.concatenate([np.linspace(r - width - buffer, r - width + buffer, num=n_left) for r in right]) \
        if len(right) else np.zeros(0)
    right = np.repeat(right, n_left)
    return _rates(_count_between(np.sort(pos), left, right), _count_between(np.sort(neg), left, right), len(pos))


def _single_threshold_rates(pos: np.ndarray, neg: np.ndarray):
    """The single-threshold family: confidences at or above the threshold are predicted positive."""
    both = np.concatenate([pos, neg])
    lo, hi = both.min(), both.max()
    thresholds = _float32_linspace(lo, hi, int(np.ceil((hi - lo) * THRESHOLDS_PER_UNIT))).astype(np.float64)
    return _rates(_count_at_least(np.sort(pos), thresholds), _count_at_least(np.sort(neg), thresholds), len(pos))


def example_epsilon(pos: np.ndarray, neg: np.ndarray, delta: float = DELTA) -> float:
    """The challenge's ε of one example: the largest (ε, δ) lower bound over both rule families' thresholds.

    A threshold with fpr = fnr = 0 (perfect separation) gives ε = inf; one with exactly one of fpr, fnr zero is
    discarded (too few samples to bound ε); otherwise ε = max(log(1 - δ - fpr) - log fnr, log(1 - δ - fnr) - log fpr),
    floored at 0. If one population's range is under 1% of the other's (a near-constant unlearned distribution),
    ε is the cap outright, as the challenge does. Where every threshold is discarded the released code stops at an
    assertion that cannot run (`assert thr_eps` on an array); we return the cap there and say so in the docs."""
    pos, neg = np.asarray(pos, np.float64).reshape(-1), np.asarray(neg, np.float64).reshape(-1)
    pos_range, neg_range = pos.max() - pos.min(), neg.max() - neg.min()
    largest = pos_range if pos_range > neg_range else neg_range
    smallest = neg_range if pos_range > neg_range else pos_range
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column of nanmax: discarded below
        if np.float64(smallest) / np.float64(largest) < 0.01:
            return EPSILON_CAP
        rates = [np.concatenate(parts) for parts in zip(_double_threshold_rates(pos, neg),
                                                        _single_threshold_rates(pos, neg))]
        tpr, fnr, fpr, tnr = rates
        separated = (fpr + fnr == 0) & (tpr + tnr == 2)
        discarded = ~separated & (fpr * fnr == 0)
        bound = np.clip(np.nanmax([np.log(1 - delta - fpr) - np.log(fnr), np.log(1 - delta - fnr) - np.log(fpr)],
                                  axis=0), 0, None).astype(np.float32)
        eps = np.where(separated, np.float32(np.inf), bound)[~discarded]
    if not len(eps):
        return EPSILON_CAP
    return float(min(np.nanmax(eps), EPSILON_CAP))


def challenge_epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Per-example ε [examples] from confidences [models, examples]: per example, the positive class is whichever
    population has the larger median (compute_forget_score_from_confs)."""
    unlearned, retrained = np.asarray(unlearned, np.float64), np.asarray(retrained, np.float64)
    retrain_positive = np.median(retrained, axis=0) > np.median(unlearned, axis=0)
    pos = np.where(retrain_positive, retrained, unlearned)
    neg = np.where(retrain_positive, unlearned, retrained)
    return np.array([example_epsilon(pos[:, i], neg[:, i], delta) for i in range(pos.shape[1])], np.float32)


def bucket_points(epsilons: np.ndarray, n_models: int) -> np.ndarray:
    """The per-example score: ε in [0, 0.5) earns 1, [0.5, 1) earns 1/2, and so on, halving each half unit up to
    ceil(log(N - 1)) (the largest ε that N models can resolve); beyond that, 0."""
    top = math.ceil(math.log(n_models - 1)) if n_models > 1 else 0
    points = np.zeros(len(epsilons))
    start, value, done = 0.0, 1.0, np.zeros(len(epsilons), bool)
    while start + BUCKET <= top:
        hit = ~done & (np.asarray(epsilons) < start + BUCKET)
        points[hit] = value
        done |= hit
        start, value = start + BUCKET, value / 2
    return points


def forget_score(unlearned: np.ndarray, retrained: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(score, per-example ε, per-example points): the challenge's forget score, the mean of the points."""
    eps = challenge_epsilons(unlearned, retrained)
    points = bucket_points(eps, np.asarray(unlearned).shape[0])
    return float(points.sum() / len(points)), eps, points


def final_score(score: float, unlearned_retain_acc: float, retrained_retain_acc: float, unlearned_test_acc: float,
                retrained_test_acc: float) -> float:
    """The challenge's utility-adjusted score: forget score x (retain accuracy ratio) x (test accuracy ratio), the
    accuracies being population means."""
    return score * (unlearned_retain_acc / retrained_retain_acc) * (unlearned_test_acc / retrained_test_acc)


# ------------------------------------------------------------------------------------------------- U-LiRA

def _gaussian_logpdf(x, mean, var):
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def _leave_one_out(values: np.ndarray, min_var: float) -> tuple[np.ndarray, np.ndarray]:
    """Per (model t, example): mean and unbiased variance of the example's values over the models other than t."""
    n = values.shape[0]
    total, squares = values.sum(0), (values ** 2).sum(0)
    mean = (total - values) / (n - 1)
    var = (squares - values ** 2 - (n - 1) * mean ** 2) / (n - 2)
    return mean, np.maximum(var, min_var)


def ulira_scores(unlearned: np.ndarray, retrained: np.ndarray, variance: str = "per_example",
                 min_var: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """U-LiRA's log likelihood ratios log N(c; unlearned fit) - log N(c; retrained fit), [models, examples], for the
    unlearned targets and for the retrained targets.

    The populations are paired by index (N each). For target index t, both Gaussians are fitted without model t of
    *either* population (N - 1 models each, unbiased variance), and both u_t and r_t are scored against that pair of
    fits: so every target is out of sample for both fits, and the two fits rest on as many models. (Leaving the target
    out of its own population's fit only biases the attack: at N = 4 a retrained-vs-retrained "attack" then scores an
    AUC of 0.38, its own population looking less likely than the other. Hayes et al. fit shadow models that never
    include the target; this is that, within one set of models.) `variance`: "per_example" (one variance per
    example, population and held-out index, as Hayes et al.) or "global" (pooled over examples: LiRA's
    fixed-variance variant, steadier at small N)."""
    u, r = np.asarray(unlearned, np.float64), np.asarray(retrained, np.float64)
    if u.shape != r.shape:
        raise ValueError(f"U-LiRA pairs the two populations by index: shapes {u.shape} and {r.shape} differ")
    if u.shape[0] < 3:
        raise ValueError("U-LiRA needs at least 3 models in each population (two for each leave-one-out fit)")
    u_mean, u_var = _leave_one_out(u, min_var)
    r_mean, r_var = _leave_one_out(r, min_var)
    if variance == "global":
        u_var = np.broadcast_to(u_var.mean(1, keepdims=True), u_var.shape)
        r_var = np.broadcast_to(r_var.mean(1, keepdims=True), r_var.shape)
    elif variance != "per_example":
        raise ValueError(f"variance: 'per_example' or 'global' (got {variance!r})")
    on_u = _gaussian_logpdf(u, u_mean, u_var) - _gaussian_logpdf(u, r_mean, r_var)
    on_r = _gaussian_logpdf(r, u_mean, u_var) - _gaussian_logpdf(r, r_mean, r_var)
    return on_u, on_r


def roc(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of the rule "score >= t" over every distinct threshold t, from (0, 0) to (1, 1)."""
    scores = np.concatenate([np.ravel(positive), np.ravel(negative)])
    labels = np.concatenate([np.ones(np.size(positive)), np.zeros(np.size(negative))])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1]  # the end of each tied block
    tp, fp = np.cumsum(labels)[last], np.cumsum(1 - labels)[last]
    return np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)]


def roc_summary(positive: np.ndarray, negative: np.ndarray, fprs=(0.01, 0.001)) -> dict[str, float]:
    """AUC (trapezoid; ties count one half), balanced accuracy at the best threshold (LiRA's "accuracy":
    max over t of (TPR + 1 - FPR) / 2), and TPR at each FPR in `fprs` (the largest TPR whose FPR is at most it)."""
    fpr, tpr = roc(positive, negative)
    out = {"auc": float(np.trapezoid(tpr, fpr)), "balanced_accuracy": float(np.max((tpr + 1 - fpr) / 2))}
    for level in fprs:
        out[f"tpr_at_{_level_name(level)}_fpr"] = float(tpr[fpr <= level].max())
    return out


def _level_name(level: float) -> str:
    return format(level * 100, "g").replace(".", "p") + "pct"


def ulira(unlearned: np.ndarray, retrained: np.ndarray, variance: str = "per_example", bootstrap: int = 200,
          seed: int = 0, fprs=(0.01, 0.001)) -> dict:
    """U-LiRA over every (example, target) pair: the ROC summary; 95% intervals from a two-way (pigeonhole) bootstrap
    that resamples the target indices (each keeping its pair and its scores) and the forget examples independently,
    since every example is attacked on the same N targets and a model-level effect moves all of them (an interval
    over examples alone was too narrow: the retrained-vs-retrained AUC of the full-class request spans 0.38-0.51 over
    N = 8-64); the per-example AUC (the attack on that example alone: its N unlearned against its N retrained targets;
    0.5 is chance), and the ROC curve itself."""
    on_u, on_r = ulira_scores(unlearned, retrained, variance=variance)
    summary = roc_summary(on_u, on_r, fprs)
    rng = np.random.default_rng(seed)
    n_targets, n_examples = on_u.shape
    draws = {k: [] for k in summary}
    for _ in range(bootstrap):
        targets, examples = rng.integers(0, n_targets, n_targets), rng.integers(0, n_examples, n_examples)
        for k, v in roc_summary(on_u[targets][:, examples], on_r[targets][:, examples], fprs).items():
            draws[k].append(v)
    intervals = {f"{k}_low": float(np.percentile(v, 2.5)) if v else float("nan") for k, v in draws.items()}
    intervals.update({f"{k}_high": float(np.percentile(v, 97.5)) if v else float("nan") for k, v in draws.items()})
    fpr, tpr = roc(on_u, on_r)
    return {**summary, **intervals, "per_example": per_example_auc(on_u, on_r), "roc": (fpr, tpr)}


def per_example_auc(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Per column (example): P(positive score > negative score) + P(tie) / 2 over every pair of its targets."""
    greater = (positive[:, None, :] > negative[None, :, :]).mean((0, 1))
    ties = (positive[:, None, :] == negative[None, :, :]).mean((0, 1))
    return greater + ties / 2


# --------------------------------------------------------------------------------------------------- KLoM

def binned_kl(p: np.ndarray, q: np.ndarray, bins: int = 20, eps: float = 1e-5, clip: float = 100.0) -> float:
    """KL(p || q) of two samples, binned as data-unlearning-bench's compute_binned_KL_div: both clipped to
    [-clip, clip], `bins` equal bins over their joint range (a value equal to the top edge falls outside every bin,
    as np.digitize places it there), and q's probability floored at eps where p's is positive."""
    p = np.clip(np.asarray(p, np.float64), -clip, clip)
    q = np.clip(np.asarray(q, np.float64), -clip, clip)
    lo, hi = min(p.min(), q.min()), max(p.max(), q.max())
    if lo >= hi:
        hi = lo + 1
    edges = np.linspace(lo, hi, bins + 1)
    pc = np.bincount(np.digitize(p, edges), minlength=bins + 2)[1:bins + 1].astype(np.float64)
    qc = np.bincount(np.digitize(q, edges), minlength=bins + 2)[1:bins + 1].astype(np.float64)
    pp = pc / pc.sum() if pc.sum() > 0 else np.zeros(bins)
    qp = qc / qc.sum() if qc.sum() > 0 else np.zeros(bins)
    qp = np.where(pp > 0, np.maximum(qp, eps), qp)
    from scipy import stats

    return float(stats.entropy(pk=pp, qk=qp))


def klom(unlearned_margins: np.ndarray, oracle_margins: np.ndarray, **kw) -> np.ndarray:
    """Per-example KLoM [examples]: KL of the unlearned models' margins from the oracles' ([models, examples])."""
    return np.array([binned_kl(unlearned_margins[:, i], oracle_margins[:, i], **kw)
                     for i in range(unlearned_margins.shape[1])])


# ----------------------------------------------------------------------------------- behavioural distances

def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (base 2, in [0, 1]) between rows of two probability arrays."""
    m = (p + q) / 2

    def kl(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, a * (np.log2(np.maximum(a, 1e-300)) - np.log2(np.maximum(b, 1e-300))), 0).sum(-1)
    return np.clip((kl(p, m) + kl(q, m)) / 2, 0, 1)


def activation_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """L2 distance between rows of two probability arrays (Chundawat et al.'s activation distance)."""
    return np.sqrt(((p - q) ** 2).sum(-1))


def zrf(model_logits: np.ndarray, teacher_logits: np.ndarray, form: str = "reference") -> float:
    """ZRF (Chundawat et al. 2023): 1 - a JS divergence between the model's and an incompetent (randomly initialised)
    teacher's output distributions on the forget set; near 1: the model behaves like a random one there.

    form "reference" (default) is the authors' UnLearningScore (vikram2000b/bad-teaching-unlearning metrics.py):
    softmax in float32, then 0.5 * F.kl_div(log p, m) + 0.5 * F.kl_div(log q, m) with m = (p + q) / 2 and torch's
    default elementwise-mean reduction, i.e. the mean over examples *and classes* of m log(m / p) and m log(m / q)
    (KL(m || p), not the JS divergence's KL(p || m)). form "js": the Jensen-Shannon divergence the paper writes
    (base 2, in [0, 1]), averaged over examples."""
    if form == "js":
        return float(1 - js_divergence(softmax(model_logits), softmax(teacher_logits)).mean())
    if form != "reference":
        raise ValueError(f"zrf form: 'reference' or 'js' (got {form!r})")

    def probs(logits):
        z = np.asarray(logits, np.float32)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    p, q = probs(model_logits), probs(teacher_logits)
    m = (p + q) / np.float32(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        def kl_mean(log_input):
            return np.where(m > 0, m * (np.log(m) - log_input), np.float32(0)).mean(dtype=np.float32)
        js = np.float32(0.5) * kl_mean(np.log(p)) + np.float32(0.5) * kl_mean(np.log(q))
    return float(1 - js)
