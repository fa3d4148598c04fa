"""Paper figures: per-method metrics with bootstrap-CI error bars, and bias correlation per iteration."""
from __future__ import annotations

import pandas as pd

from ...core.io import atomic_path, read_table

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
    from ...config.sweeps import is_point

    plt, sns = _pyplot()
    runs, summary = read_table(runs_csv, "runs table"), read_table(summary_csv, "summary table")
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
    from ...config.sweeps import is_point

    plt, sns = _pyplot()
    traces = read_table(traces_csv, "traces table")
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


# ---------------------------------------------------------------------------------------------- bias strength

BIAS_STRENGTH_METRICS = [("test_f1", "Test F1"), ("bias_cramers_v", "Cramér's V (test colour, prediction)")]
REFERENCE_STYLE = {"original": dict(color="black", marker="s", lw=2.0, label="baseline (original)"),
                   "retrain": dict(color="0.45", marker="o", lw=2.0, ls="--", label="oracle (retrain)")}
SETTING_TITLES = {"standard": "Standard", "sparsity": "Sparsity", "uib": "UIB"}


def bias_strength_figure(*, summary: str, pdf: str, png: str, strengths: dict) -> None:
    """Rule bias_strength_figure: test F1 and Cramér's V against colour.bias_strength s.

    `strengths` maps each dataset that runs a bias-type scenario to {"scenario", "bias_strength", "group"}:
    datasets of one group differ only in s (rules/common.smk checks it), and each group is one column block. In each
    panel: the baseline (original), the oracle (retrain) and the further references (e.g. retrain_replace), and the
    methods of one setting; mean and 95% BCa bootstrap CI over seeds (summary.csv)."""
    plt, _ = _pyplot()
    table = pd.read_csv(summary)
    rows = []
    for dataset, info in strengths.items():
        part = table[(table.dataset == dataset) & (table.scenario == info["scenario"])
                     & table.metric.isin([m for m, _ in BIAS_STRENGTH_METRICS])]
        rows.append(part.assign(s=float(info["bias_strength"]), group=info["group"]))
    data = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=[*table.columns, "s", "group"])
    if data.empty:
        raise ValueError(f"{summary}: no test_f1 / bias_cramers_v rows for the bias datasets {sorted(strengths)}")
    references = [m for m in dict.fromkeys(data.method) if m == "original" or m.startswith("retrain")]
    groups = list(dict.fromkeys(info["group"] for info in strengths.values()))
    settings = [s for s in SETTING_TITLES if s in set(data.setting)] + \
        [s for s in dict.fromkeys(data.setting) if s not in SETTING_TITLES]
    n_rows, n_cols = len(BIAS_STRENGTH_METRICS), len(groups) * len(settings)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 2.9 * n_rows), squeeze=False, sharex=True)
    palette = plt.get_cmap("tab10")
    methods = [m for m in dict.fromkeys(data.method) if m not in references]
    colour_of = {m: palette(i % 10) for i, m in enumerate(methods)}
    extra_styles = [dict(color="0.45", marker="^", lw=1.5, ls=":"), dict(color="0.65", marker="v", lw=1.5, ls="-.")]
    handles = {}
    for g_i, group in enumerate(groups):
        for s_i, setting in enumerate(settings):
            col = g_i * len(settings) + s_i
            for r_i, (metric, label) in enumerate(BIAS_STRENGTH_METRICS):
                ax = axes[r_i, col]
                cell = data[(data.group == group) & (data.metric == metric)]
                lines = [(m, "standard") for m in references] + \
                        [(m, setting) for m in methods if ((cell.method == m) & (cell.setting == setting)).any()]
                for method, line_setting in lines:
                    points = cell[(cell.method == method) & (cell.setting == line_setting)].sort_values("s")
                    if points.empty:
                        continue
                    if method in REFERENCE_STYLE:
                        style = dict(REFERENCE_STYLE[method])
                    elif method in references:
                        extra = references.index(method) % len(extra_styles)
                        style = dict(extra_styles[extra], label=f"reference ({method})")
                    else:
                        style = dict(color=colour_of[method], marker="o", lw=1.2, label=method)
                    lower = (points["mean"] - points["ci_low"]).clip(lower=0).fillna(0)
                    upper = (points["ci_high"] - points["mean"]).clip(lower=0).fillna(0)
                    name = style.pop("label")
                    handle = ax.errorbar(points["s"], points["mean"], yerr=[lower, upper], capsize=2, ms=3.5,
                                         **style)
                    handles.setdefault(name, handle)
                ax.set_title(f"{group} / {SETTING_TITLES.get(setting, setting)}", fontsize=8)
                ax.set_ylabel(label if col == 0 else "", fontsize=8)
                ax.set_ylim(-0.02, 1.02)
                if r_i == n_rows - 1:
                    ax.set_xlabel("bias strength s (share of training images in their class colour)", fontsize=7)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(6, len(handles)), fontsize=7,
               frameon=False, bbox_to_anchor=(0.5, -0.02 - 0.025 * (len(handles) // 6)))
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(handles) // 6), 1, 1))
    _save(fig, pdf, png)
    plt.close(fig)
