"""Paper figures: per-method metrics with bootstrap-CI error bars, and bias correlation per iteration."""
from __future__ import annotations

import pandas as pd

from .io import atomic_path

FIGURE_METRICS = [("test_f1", "Test F1"), ("forget_acc", "$D_f$ accuracy"), ("mia_efficacy_svc", "MIA-Efficacy"),
                  ("bias_cramers_v", "Bias correlation (Cramér's V)"), ("ut_seconds", "Unlearning time (s)")]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def _save(fig, pdf: str, png: str) -> None:
    for path, kwargs in ((pdf, {}), (png, {"dpi": 150})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.rsplit(".", 1)[1], bbox_inches="tight", **kwargs)


def make_figures(*, runs: str, summary: str, traces: str, pdf: str, png: str, trace_pdf: str, trace_png: str) -> None:
    """Rule figures: the per-metric figure and the per-iteration bias trace."""
    metric_figure(runs, summary, pdf, png)
    trace_figure(traces, trace_pdf, trace_png)


def metric_figure(runs_csv: str, summary_csv: str, pdf: str, png: str) -> None:
    """One panel per (scenario, metric): per-seed points and the mean with its 95% BCa bootstrap CI."""
    from .sweeps import is_point

    plt, sns = _pyplot()
    runs, summary = pd.read_csv(runs_csv), pd.read_csv(summary_csv)
    runs = runs[~runs["run"].map(is_point)]  # sweep points: fig_sensitivity_*
    runs["label"] = runs["setting"].where(runs["setting"] == "standard", runs["setting"] + "/") \
        .replace("standard", "") + runs["method"]
    summary["label"] = summary["setting"].where(summary["setting"] == "standard", summary["setting"] + "/") \
        .replace("standard", "") + summary["method"]
    panels = [(ds, sc, m, title) for (ds, sc) in summary[["dataset", "scenario"]].drop_duplicates().itertuples(index=False)
              for m, title in FIGURE_METRICS if ((summary.dataset == ds) & (summary.scenario == sc)
                                                 & (summary.metric == m)).any()]
    n_cols = len(FIGURE_METRICS)
    rows = sorted({(ds, sc) for ds, sc, _, _ in panels})
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(3.2 * n_cols, 2.8 * len(rows)), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    order = list(dict.fromkeys(summary["label"]))
    for ds, sc, metric, title in panels:
        ax = axes[rows.index((ds, sc)), [m for m, _ in FIGURE_METRICS].index(metric)]
        ax.set_visible(True)
        cell = summary[(summary.dataset == ds) & (summary.scenario == sc) & (summary.metric == metric)]
        cell = cell.set_index("label").reindex([o for o in order if o in set(cell.label)])
        points = runs[(runs.dataset == ds) & (runs.scenario == sc) & (runs.metric == metric)]
        sns.stripplot(data=points, x="value", y="label", order=list(cell.index), ax=ax, color="0.6", size=3,
                      jitter=0.15)
        lower = (cell["mean"] - cell["ci_low"]).clip(lower=0).fillna(0)
        upper = (cell["ci_high"] - cell["mean"]).clip(lower=0).fillna(0)
        ax.errorbar(cell["mean"], range(len(cell)), xerr=[lower, upper], fmt="o", color="C0", capsize=3)
        ax.set_title(f"{ds} / {sc}\n{title}", fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.tight_layout()
    _save(fig, pdf, png)
    plt.close(fig)


def trace_figure(traces_csv: str, pdf: str, png: str) -> None:
    """UIB Fig. 5: bias correlation on the random-colour test set after each unlearning iteration."""
    from .sweeps import is_point

    plt, sns = _pyplot()
    traces = pd.read_csv(traces_csv)
    traces = traces[~traces["run"].astype(str).map(is_point)] if "run" in traces.columns else traces
    metric = "bias_cramers_v" if "bias_cramers_v" in traces.columns else "forget_acc"
    traces = traces.dropna(subset=[metric]) if metric in traces.columns else traces.iloc[0:0]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    if len(traces):
        traces = traces[traces.scenario == "bias"] if (traces.scenario == "bias").any() else traces
        sns.lineplot(data=traces, x="iteration", y=metric, hue="run", style="dataset", errorbar=("ci", 95),
                     n_boot=1000, seed=0, ax=ax, marker="o")
        ax.set_ylabel("Cramér's V (colour, prediction)" if metric == "bias_cramers_v" else metric)
    else:
        ax.text(0.5, 0.5, "no iterative methods in this configuration", ha="center", va="center")
    ax.set_xlabel("unlearning iteration")
    fig.tight_layout()
    _save(fig, pdf, png)
    plt.close(fig)
