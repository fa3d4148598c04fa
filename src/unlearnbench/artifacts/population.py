"""The population stage's artifacts (rules/population.smk; docs/forget_quality.md): per (dataset, scenario), from the
members' saved outputs, the challenge's forget score with its retrained-vs-retrained ceiling, U-LiRA, KLoM, the
per-example attack on retain examples, behavioural distances to the retrained models and ZRF, beside the papers'
population attacks on the same members; written as a summary CSV, a per-example CSV, the ROC curves (npz), a LaTeX
table and two figures."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.io import atomic_path, atomic_save_npz, atomic_write_text
from ..core.logs import get_logger
from ..evaluation import metrics
from ..evaluation import population as pop
from .jit.report import _pyplot, _save, _tex, method_label

FPRS = (0.01, 0.001)
REFERENCE_ROWS = ("original", "retrain")  # the un-unlearned originals; the ceiling: a second retrained population


def _outputs(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _stack(members: list[dict], part: str, transform, index=None) -> np.ndarray:
    """[models, examples] of transform(logits, labels) on `part` (forget / retain / test), optionally a subset."""
    rows = []
    for out in members:
        logits, labels = out[f"{part}_logits"], out[f"{part}_labels"]
        if index is not None:
            logits, labels = logits[index], labels[index]
        rows.append(transform(logits, labels))
    return np.stack(rows)


def _accuracy(members: list[dict], part: str) -> float:
    return float(np.mean([metrics.accuracy(m[f"{part}_labels"], m[f"{part}_logits"].argmax(1)) for m in members]))


def _interval(values: np.ndarray, bootstrap: int, seed: int) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval of per-member values."""
    values = np.asarray(values, np.float64)
    if bootstrap == 0 or len(values) < 2:
        return float(values.mean()), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (bootstrap, len(values)))].mean(1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def evaluate_row(unlearned: list[dict], retrained: list[dict], teacher: dict, retain_index: np.ndarray, *,
                 conf_u: np.ndarray, conf_r: np.ndarray, variance: str, bootstrap: int,
                 seed: int) -> tuple[dict, dict, tuple]:
    """(summary, per-example arrays, ROC curve) of one population of models against the retrained one; `conf_u`,
    `conf_r`: the two populations' forget-set confidences (computed once by the caller)."""
    score, eps, points = pop.forget_score(conf_u, conf_r)
    acc = {f"{who}_{part}_acc": _accuracy(members, part) for who, members in (("unlearned", unlearned),
                                                                                ("retrained", retrained))
           for part in ("forget", "retain", "test")}
    row = {"forget_score": score, "final_score": pop.final_score(score, acc["unlearned_retain_acc"],
                                                                  acc["retrained_retain_acc"],
                                                                  acc["unlearned_test_acc"],
                                                                  acc["retrained_test_acc"]),
           "epsilon_median": float(np.median(eps)), "epsilon_capped_share": float(np.mean(eps >= pop.EPSILON_CAP)),
           **acc}
    ulira = pop.ulira(conf_u, conf_r, variance=variance, bootstrap=bootstrap, seed=seed, fprs=FPRS)
    curve = ulira.pop("roc")
    per_example_auc = ulira.pop("per_example")
    row.update({f"ulira_{k}": v for k, v in ulira.items()})
    kl = pop.klom(_stack(unlearned, "forget", pop.margins), _stack(retrained, "forget", pop.margins))
    row.update(klom_mean=float(kl.mean()), klom_p95=float(np.percentile(kl, 95)))
    # Hayes et al.: the same per-example attack on retain examples (unlearning can expose them)
    on_u, on_r = pop.ulira_scores(_stack(unlearned, "retain", pop.logit_scaled_confidence, retain_index),
                                  _stack(retrained, "retain", pop.logit_scaled_confidence, retain_index),
                                  variance=variance)
    row.update({f"retain_ulira_{k}": v for k, v in pop.roc_summary(on_u, on_r, FPRS).items()})
    # behavioural distances, member k against retrained model k, and ZRF against the incompetent teacher
    pairs = {"activation_distance": [], "js_divergence": [], "zrf": [], "mia_lr_entropy": [], "mia_efficacy_svc": []}
    for k, (u, r) in enumerate(zip(unlearned, retrained)):
        p_u, p_r = pop.softmax(u["forget_logits"]), pop.softmax(r["forget_logits"])
        pairs["activation_distance"].append(pop.activation_distance(p_u, p_r).mean())
        pairs["js_divergence"].append(pop.js_divergence(p_u, p_r).mean())
        pairs["zrf"].append(pop.zrf(u["forget_logits"], teacher["forget_logits"]))
        # the papers' population attacks, on each member (JiT's LR-entropy MIA, UIB's SVC MIA-Efficacy)
        pairs["mia_lr_entropy"].append(metrics.mia_lr_entropy(u["retain_logits"], u["test_logits"],
                                                              u["forget_logits"], seed=seed + k))
        pairs["mia_efficacy_svc"].append(metrics.mia_efficacy_svc(
            u["retain_logits"], u["retain_labels"], u["test_logits"], u["test_labels"], u["forget_logits"],
            u["forget_labels"], seed=seed + k))
    for name, values in pairs.items():
        values = np.asarray(values, np.float64)
        values = values[np.isfinite(values)]
        mean, low, high = _interval(values, bootstrap, seed) if len(values) else (float("nan"),) * 3
        row.update({name: mean, f"{name}_low": low, f"{name}_high": high})
    return row, {"epsilon": eps, "points": points, "ulira_auc": per_example_auc, "klom": kl}, curve


def forget_quality(*, retrained: list[str], original: list[str], unlearned: list[str], teacher: str, summary: str,
                   per_example: str, curves: str, vs_n: str, table: str, roc_pdf: str, roc_png: str, eps_pdf: str,
                   eps_png: str, n_pdf: str, n_png: str,
                   dataset: str, scenario: str, label: str, runs: list[str], methods: dict, size: int, protocol: str,
                   variance: str, retain_sample: int, bootstrap: int, data_seed: int, threads: int = 1,
                   log: str | None = None) -> None:
    """Rule forget_quality. `retrained`: 2N outputs (seeds 0..2N-1), `original`: N, `unlearned`: N per run of `runs`
    in order; `methods`: run -> [setting, method] (row labels). The rows and the N analysis run in `threads`
    processes (each is independent; the numbers do not depend on the count)."""
    log_fn = get_logger(log).info
    n = size
    if len(retrained) != 2 * n or len(original) != n or len(unlearned) != n * len(runs):
        raise ValueError(f"forget_quality: expected {2 * n} retrained, {n} original and {n} x {len(runs)} unlearned "
                         f"outputs; got {len(retrained)}, {len(original)}, {len(unlearned)}")
    reference = [_outputs(p) for p in retrained[:n]]
    ceiling = [_outputs(p) for p in retrained[n:]]
    labels = reference[0]["forget_labels"]
    for out in [*ceiling, *reference]:
        if not np.array_equal(out["forget_labels"], labels):
            raise ValueError("forget_quality: the members' forget sets differ; every member must share one request")
    teacher_out = _outputs(teacher)
    n_retain = len(reference[0]["retain_labels"])
    retain_index = np.sort(np.random.default_rng(data_seed).choice(n_retain, min(retain_sample, n_retain),
                                                                   replace=False))
    populations = {run: unlearned[i * n:(i + 1) * n] for i, run in enumerate(runs)}
    populations["original"] = original
    populations["retrain"] = retrained[n:]
    rows, examples, roc = [], [], {}
    loaded = {name: ceiling if name == "retrain" else [_outputs(p) for p in paths]
              for name, paths in populations.items()}
    confidences = {name: _stack(members, "forget", pop.logit_scaled_confidence) for name, members in loaded.items()}
    reference_conf = _stack(reference, "forget", pop.logit_scaled_confidence)
    sizes = population_sizes(n)[:-1]  # n = N is the table's own row
    with _pool(threads) as pool:
        table_rows = {name: pool.submit(evaluate_row, members, reference, teacher_out, retain_index,
                                        conf_u=confidences[name], conf_r=reference_conf, variance=variance,
                                        bootstrap=bootstrap, seed=data_seed)
                      for name, members in loaded.items()}
        smaller = {(name, k): pool.submit(_scores_at, confidences[name][:k], reference_conf[:k], variance)
                   for k in sizes for name in confidences}
        for name, future in table_rows.items():
            row, per_ex, curve = future.result()
            setting, method = methods.get(name, ["standard", name])
            rows.append({"dataset": dataset, "scenario": scenario, "run": name, "setting": setting,
                         "method": method, "n_models": n, "protocol": protocol, "n_forget": len(labels), **row})
            examples.append(pd.DataFrame({"run": name, "example": np.arange(len(labels)), "label": labels,
                                          **per_ex}))
            roc[f"{name}__fpr"], roc[f"{name}__tpr"] = curve
            log_fn(f"{name}: forget score {row['forget_score']:.4f}, U-LiRA AUC {row['ulira_auc']:.3f}, "
                   f"TPR@1%FPR {row['ulira_tpr_at_1pct_fpr']:.3f}, KLoM {row['klom_mean']:.3f}")
        at = {key: future.result() for key, future in smaller.items()}
        by_n_rows = [{"run": name, "n_models": k, **scores, "ceiling_score": at["retrain", k]["forget_score"]}
                     for (name, k), scores in at.items()]
    frame = pd.DataFrame(rows)
    ceiling_score = float(frame.loc[frame.run == "retrain", "forget_score"].iloc[0])
    frame["forget_score_normalised"] = frame.forget_score / ceiling_score if ceiling_score > 0 else np.nan
    with atomic_path(summary) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(per_example) as tmp:
        pd.concat(examples).to_csv(tmp, index=False, float_format="%.6g")
    atomic_save_npz(curves, roc)
    by_n_rows += [{"run": r.run, "n_models": n, "forget_score": r.forget_score, "ceiling_score": ceiling_score,
                   "ulira_auc": r.ulira_auc, "ulira_tpr_at_1pct_fpr": r.ulira_tpr_at_1pct_fpr}
                  for r in frame.itertuples()]
    by_n = pd.DataFrame(by_n_rows)
    by_n["forget_score_normalised"] = by_n.forget_score / by_n.ceiling_score.where(by_n.ceiling_score > 0)
    by_n.insert(0, "scenario", scenario)
    by_n.insert(0, "dataset", dataset)
    with atomic_path(vs_n) as tmp:
        by_n.to_csv(tmp, index=False, float_format="%.6g")
    n_figure(by_n, frame, label, scenario, n_pdf, n_png)
    atomic_write_text(table, forget_quality_table(frame, label, scenario))
    roc_figure(frame, roc, label, scenario, roc_pdf, roc_png)
    epsilon_figure(pd.concat(examples), frame, label, scenario, eps_pdf, eps_png)


def population_sizes(n: int) -> list[int]:
    """The sizes the N analysis evaluates: 4, 8, 16, ... below N, and N."""
    sizes = [k for k in (4, 8, 16, 32, 64, 128, 256, 512) if k < n]
    return sizes + [n]


def _scores_at(conf: np.ndarray, reference: np.ndarray, variance: str) -> dict:
    """The N analysis at one size: a population's (first n) confidences against the first n reference models (the
    ceiling at that size is the "retrain" population's own score)."""
    attack = pop.roc_summary(*pop.ulira_scores(conf, reference, variance=variance), FPRS)
    return {"forget_score": pop.forget_score(conf, reference)[0], "ulira_auc": attack["auc"],
            "ulira_tpr_at_1pct_fpr": attack["tpr_at_1pct_fpr"]}


class _Inline:
    """A pool that runs each task when it is submitted (one thread: no processes)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args, **kwargs):
        from concurrent.futures import Future

        future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _pool(threads: int):
    if threads <= 1:
        return _Inline()
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=threads, mp_context=multiprocessing.get_context("fork"))


def n_figure(by_n: pd.DataFrame, frame: pd.DataFrame, label: str, scenario: str, pdf: str, png: str) -> None:
    """The challenge's forget score (raw, with the ceiling dashed) and U-LiRA's AUC against the population size."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8))
    methods = [r for r in frame.run if r not in REFERENCE_ROWS]
    styles = [(r, c, "-") for r, c in zip(methods, _colours(len(methods)))] + [("original", "k", "--"),
                                                                              ("retrain", "0.5", ":")]
    for name, colour, style in styles:
        part = by_n[by_n.run == name].sort_values("n_models")
        if part.empty:
            continue
        row = frame[frame.run == name].iloc[0]
        text = ("BSLN (original)" if name == "original" else "RTRN vs RTRN (ceiling)" if name == "retrain"
                else _row_label(row, tex=False))
        for ax, column in zip(axes, ("forget_score", "ulira_auc")):
            ax.plot(part.n_models, part[column], style, color=colour, marker="o", ms=3, lw=1.2, label=text)
    for ax, title in zip(axes, ("challenge forget score (higher: closer to retraining)",
                                "U-LiRA AUC (0.5: chance)")):
        ax.set_xscale("log", base=2)
        sizes = sorted(by_n.n_models.unique())
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("models per population N")
        ax.set_title(title, fontsize=8)
    axes[1].axhline(0.5, color="0.8", lw=0.8)
    axes[1].legend(fontsize=6.5, loc="best")
    fig.suptitle(f"Scores against N, {label} {scenario} (the first N members of each population)", fontsize=9)
    _save(fig, pdf, png)
    plt.close(fig)


# names beyond JiT's table abbreviations: UIB's SR is Fisher scrubbing as Unlearn-Sparse runs it (fisher_new)
EXTRA_NAMES = {"fisher_new": "SR"}
SETTING_NAMES = {"sparsity": "Sparsity", "uib": "UIB"}


def _row_label(row, tex: bool = True) -> str:
    if row.run == "retrain":
        return "RTRN vs RTRN (ceiling)"
    name = EXTRA_NAMES.get(row.method) or method_label("standard", row.method, tex=tex)
    if row.setting == "standard":
        return name
    return f"{name} ({SETTING_NAMES.get(row.setting, _tex(row.setting) if tex else row.setting)})"


def separated_note(frame: pd.DataFrame, threshold: float = 0.95) -> str:
    """The table's note when every method is told apart from retraining (U-LiRA AUC >= threshold): the table then
    ranks nothing by AUC, and says so."""
    methods = frame[~frame.run.isin(REFERENCE_ROWS)]
    if len(methods) == 0 or methods.ulira_auc.min() < threshold:
        return ""
    return (f" On this request every method is told apart from retraining (U-LiRA AUC $\\geq$ {threshold}, the "
            f"ceiling {float(frame.loc[frame.run == 'retrain', 'ulira_auc'].iloc[0]):.3f}): no method's confidences "
            f"on the forget set look like those of models that never saw it, so AUC ranks nothing here; TPR at "
            f"0.1\\% FPR and the forget score still order the methods.")


def _ci(row, key: str, digits: int = 3) -> str:
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    value = f"{row[key]:.{digits}f}"
    if low is None or not np.isfinite(low):
        return value
    return f"{value} {{\\scriptsize [{low:.{digits}f}, {high:.{digits}f}]}}"


def forget_quality_table(frame: pd.DataFrame, label: str, scenario: str) -> str:
    """Per method: the challenge's forget score (and over its ceiling), the final score, U-LiRA (AUC with its
    interval, balanced accuracy, TPR at 1% and 0.1% FPR), KLoM, U-LiRA on retain examples, accuracies, and the
    papers' population attacks on the same members."""
    head = ("Method & Forget & Norm. & Final & U-LiRA AUC & Bal. acc. & TPR@1\\% & TPR@0.1\\% & KLoM & "
            "Retain AUC & Retain & Test & MIA-LR & MIA-SVC \\\\")
    lines = ["% generated by unlearnbench (rules/population.smk); docs/forget_quality.md",
             "\\begin{table}[t]", "\\centering", "\\scriptsize", "\\setlength{\\tabcolsep}{3pt}",
             "\\begin{tabular}{l" + "r" * 13 + "}", "\\toprule", head, "\\midrule"]
    order = [r for r in frame.run if r not in REFERENCE_ROWS] + [r for r in REFERENCE_ROWS if r in set(frame.run)]
    for name in order:
        row = frame[frame.run == name].iloc[0]
        if name == "original":
            lines.append("\\midrule")
        cells = [_row_label(row), f"{row.forget_score:.3f}", f"{row.forget_score_normalised:.2f}",
                 f"{row.final_score:.3f}", _ci(row, "ulira_auc"), f"{row.ulira_balanced_accuracy:.3f}",
                 f"{row.ulira_tpr_at_1pct_fpr:.3f}", f"{row.ulira_tpr_at_0p1pct_fpr:.3f}", f"{row.klom_mean:.3f}",
                 f"{row.retain_ulira_auc:.3f}", f"{row.unlearned_retain_acc:.3f}", f"{row.unlearned_test_acc:.3f}",
                 f"{row.mia_lr_entropy:.3f}", f"{row.mia_efficacy_svc:.3f}"]
        lines.append(" & ".join(cells) + " \\\\")
    first = frame.iloc[0]
    ceiling = float(frame.loc[frame.run == "retrain", "forget_score"].iloc[0])
    lines += ["\\bottomrule", "\\end{tabular}",
              f"\\caption{{Forgetting quality on {_tex(label)}, {_tex(scenario)}: populations of "
              f"{int(first.n_models)} unlearned and {int(first.n_models)} retrained models "
              f"({_tex(first.protocol)} protocol), {int(first.n_forget)} forget examples. Forget: the NeurIPS 2023 "
              f"challenge's score (per-example $\\varepsilon$ at $\\delta=10^{{-5}}$, bucketed); Norm.: over the "
              f"retrained-vs-retrained ceiling at this $N$ ({ceiling:.3f}, last row); Final: times the retain and "
              f"test accuracy ratios. U-LiRA (Hayes et al.): per-example likelihood-ratio attack, unlearned vs "
              f"retrained targets, each target (and its pair) left out of both Gaussian fits, ROC over all (example, "
              f"target) pairs, 95\\% "
              f"bootstrap interval over targets and forget examples; 0.5 is chance. KLoM: mean per-example binned KL of margins. "
              f"Retain AUC: U-LiRA on retain examples. MIA-LR (JiT) and MIA-SVC (UIB MIA-Efficacy): the papers' "
              f"population attacks, mean over the unlearned members. BSLN: the originals as targets (how much there "
              f"was to forget).{separated_note(frame)}}}",
              f"\\label{{tab:forget_quality_{first.dataset}_{first.scenario}}}", "\\end{table}", ""]
    return "\n".join(lines)


def _colours(n: int):
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def roc_figure(frame: pd.DataFrame, roc: dict, label: str, scenario: str, pdf: str, png: str) -> None:
    """U-LiRA's ROC per method on log-log axes, with the originals' and the ceiling's curves."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    methods = [r for r in frame.run if r not in REFERENCE_ROWS]
    floor = 1.0 / max(1, int(frame.n_models.iloc[0]) * int(frame.n_forget.iloc[0]))
    for colour, name in zip(_colours(len(methods)), methods):
        row = frame[frame.run == name].iloc[0]
        ax.plot(np.maximum(roc[f"{name}__fpr"], floor), np.maximum(roc[f"{name}__tpr"], floor), color=colour, lw=1.3,
                label=f"{_row_label(row, tex=False)} (AUC {row.ulira_auc:.2f})")
    for name, style in (("original", "--"), ("retrain", ":")):
        if name in set(frame.run):
            row = frame[frame.run == name].iloc[0]
            ax.plot(np.maximum(roc[f"{name}__fpr"], floor), np.maximum(roc[f"{name}__tpr"], floor), "k" + style,
                    lw=1.2, label=f"{'BSLN (original)' if name == 'original' else 'RTRN vs RTRN'} "
                                  f"(AUC {row.ulira_auc:.2f})")
    grid = np.logspace(np.log10(floor), 0, 50)
    ax.plot(grid, grid, color="0.7", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor, 1)
    ax.set_xlabel("false positive rate (retrained target called unlearned)")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"U-LiRA, {label} {scenario} (N = {int(frame.n_models.iloc[0])}, {frame.protocol.iloc[0]})",
                 fontsize=9)
    ax.legend(fontsize=6.5, loc="lower right")
    _save(fig, pdf, png)
    plt.close(fig)


def epsilon_figure(examples: pd.DataFrame, frame: pd.DataFrame, label: str, scenario: str, pdf: str,
                   png: str) -> None:
    """Per method, the distribution over forget examples of the challenge's per-example ε (left; the cap of 50
    drawn at the axis' edge and counted) and of U-LiRA's per-example AUC (right; 0.5 is chance): the hard-to-forget
    examples are the right tails."""
    plt = _pyplot()
    order = [r for r in frame.run if r not in REFERENCE_ROWS] + [r for r in REFERENCE_ROWS if r in set(frame.run)]
    names = [_row_label(frame[frame.run == r].iloc[0], tex=False) for r in order]
    n_models = int(frame.n_models.iloc[0])
    edge = float(np.ceil(np.log(max(n_models - 1, 2)))) + 1.5  # beyond the last bucket that scores
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.45 * len(order) + 1.6), sharey=True)
    eps = [examples.loc[examples.run == r, "epsilon"].to_numpy(float) for r in order]
    axes[0].boxplot([np.minimum(e, edge) for e in eps], vert=False, widths=0.6, flierprops={"markersize": 2})
    for i, e in enumerate(eps, start=1):
        capped = int((e >= pop.EPSILON_CAP).sum())
        if capped:
            axes[0].text(edge, i, f" {capped} at 50", va="center", fontsize=6)
    axes[0].set_xlim(0, edge * 1.25)
    axes[0].set_title(f"per-example ε (challenge; buckets score up to {edge - 1.5:.0f})", fontsize=8)
    auc = [examples.loc[examples.run == r, "ulira_auc"].to_numpy(float) for r in order]
    axes[1].boxplot(auc, vert=False, widths=0.6, flierprops={"markersize": 2})
    axes[1].axvline(0.5, color="0.7", lw=0.8)
    axes[1].set_xlim(0, 1)
    axes[1].set_title("per-example U-LiRA AUC (0.5: chance)", fontsize=8)
    for ax in axes:
        ax.set_yticks(range(1, len(order) + 1), names, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle(f"Per-example forgetting, {label} {scenario} (N = {n_models})", fontsize=9)
    _save(fig, pdf, png)
    plt.close(fig)
