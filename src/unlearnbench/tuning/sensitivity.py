"""Sweeps: their summary (summary/sweeps.csv) and sensitivity figures (JiT Figs. 7-8: D_r accuracy and MIA against
η and σ; UIB: β × τ), with the table row (the run's configured or tuned knobs) marked. docs/tuning.md.

A sweep point is a run of its own (runs.csv rows with `sweep` = the swept run and `point` = its knob values); the
figure of swept run R shows, per (dataset, scenario), each metric's mean ± std over seeds at every point, R's own
row (what the tables report) as a star, and Retrain / Original as reference lines.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from ..core.io import atomic_path

SUMMARY_KEYS = ["dataset", "scenario", "setting", "method", "sweep", "run", "point", "metric"]
# (metric, axis label); "dr_acc" = accuracy on the retained classes' test images (class scenarios), else test
# accuracy (JiT's D_r accuracy); the MIA is JiT's LR-entropy attack for JiT, Unlearn-Sparse's SVC for the others
MIA = {"jit": ("mia_lr_entropy", "MIA (LR, entropy)")}
DEFAULT_MIA = ("mia_efficacy_svc", "MIA-Efficacy")
# axis names of knobs (mathtext); others by name. JiT's lr is the paper's η.
SYMBOLS = {"sigma": r"$\sigma$", "beta": r"$\beta$", "tau": r"$\tau$", "gamma": r"$\gamma$", "alpha": r"$\alpha$"}


def panel_metrics(method: str, available) -> list[tuple[str, str]]:
    out = [("dr_acc", "$D_r$ accuracy (test)"), ("forget_acc", "$D_f$ accuracy"), MIA.get(method, DEFAULT_MIA)]
    if "bias_cramers_v" in set(available):
        out.append(("bias_cramers_v", "Cramér's V (colour, prediction)"))
    return [(m, label) for m, label in out if m == "dr_acc" or m in set(available)]


def with_dr_acc(long: pd.DataFrame) -> pd.DataFrame:
    """Add metric dr_acc: retain_class_test_acc where a run has it (class scenarios), else test_acc."""
    ids = [c for c in long.columns if c not in ("metric", "value")]
    pivot = long[long.metric.isin(["retain_class_test_acc", "test_acc"])]
    preferred = pivot.sort_values("metric").drop_duplicates(subset=["dataset", "scenario", "run", "seed"], keep="first")
    # sort_values puts retain_class_test_acc before test_acc
    dr = preferred.assign(metric="dr_acc")[ids + ["metric", "value"]]
    return pd.concat([long, dr], ignore_index=True)


def sweep_summary(*, runs: str, sweeps: str) -> pd.DataFrame:
    """Rule sweep_summary: mean, std and n over seeds of every metric at every sweep point (with its knob values as
    columns `knob:<flat key>`)."""
    long = pd.read_csv(runs, keep_default_na=False, na_values=[""])
    columns = SUMMARY_KEYS + ["n", "mean", "std"]
    points = long[long["sweep"].fillna("") != ""] if "sweep" in long.columns else long.iloc[0:0]
    rows = []
    if len(points):
        points = with_dr_acc(points)
        for key, g in points.groupby(SUMMARY_KEYS, sort=True):
            values = g["value"].to_numpy(float)
            row = dict(zip(SUMMARY_KEYS, key))
            row.update({"n": len(values), "mean": float(values.mean()),
                        "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan")})
            row.update({f"knob:{k}": v for k, v in json.loads(row["point"]).items()})
            rows.append(row)
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)
    with atomic_path(sweeps) as tmp:
        table.to_csv(tmp, index=False)
    return table


def _table_row(long: pd.DataFrame, run: str, keys: list[str]) -> pd.DataFrame:
    """The swept run's own row (table knobs) per (dataset, scenario): its knob values for `keys` and metric means."""
    from ..config.sweeps import SETTING_PREFIX

    own = long[long.run == run]
    if own.empty:
        return pd.DataFrame()
    own = with_dr_acc(own)
    out = []
    for (dataset, scenario), g in own.groupby(["dataset", "scenario"]):
        row = {"dataset": dataset, "scenario": scenario, "knobs_from": g["knobs_from"].iloc[0]}
        for k in keys:
            column = ("setting_knob_" + k[len(SETTING_PREFIX):]) if k.startswith(SETTING_PREFIX) else f"knob_{k}"
            row[f"knob:{k}"] = g[column].iloc[0] if column in g.columns else np.nan
        row.update({f"mean:{m}": v for m, v in g.groupby("metric")["value"].mean().items()})
        out.append(row)
    return pd.DataFrame(out)


def _references(long: pd.DataFrame) -> dict:
    """(dataset, scenario, reference run, metric) -> mean over seeds, for retrain and original."""
    refs = with_dr_acc(long[long.run.isin(["retrain", "original"])])
    return refs.groupby(["dataset", "scenario", "run", "metric"])["value"].mean().to_dict()


def _number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def _log_scale(values) -> bool:
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return len(nums) == len(values) and len(nums) > 1 and min(nums) > 0 and max(nums) / min(nums) >= 10


def sensitivity_figure(*, sweeps: str, runs: str, pdf: str, png: str, run: str, labels: dict | None = None,
                       scenarios: dict | None = None) -> None:
    """Rule sensitivity: the figure of swept run `run` (heatmaps for a full two-knob grid whose table row lies on
    it, e.g. UIB's β × τ; otherwise one line panel per metric and swept knob, e.g. JiT's η and σ)."""
    from ..artifacts.uib.plots import _pyplot, _save
    from ..config.sweeps import key_order, point_label

    plt, _ = _pyplot()
    table = pd.read_csv(sweeps)
    table = table[table["sweep"] == run] if len(table) else table
    long = pd.read_csv(runs, keep_default_na=False, na_values=[""])
    if table.empty:
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.text(0.5, 0.5, f"no sweep points of {run} in runs.csv", ha="center", va="center")
        ax.set_axis_off()
        _save(fig, pdf, png)
        plt.close(fig)
        return
    keys = key_order({k for p in table["point"].unique() for k in json.loads(p)})
    method = table["method"].iloc[0]
    metrics = panel_metrics(method, table["metric"].unique())
    own, refs = _table_row(long, run, keys), _references(long)
    method_knobs = {c[len("knob_"):] for c in long.columns if c.startswith("knob_")}
    names = {k: SYMBOLS.get(point_label(k, method_knobs), point_label(k, method_knobs)) for k in keys}
    if method == "jit" and "lr" in names:
        names["lr"] = r"$\eta$ (lr)"
    experiments = list(table[["dataset", "scenario"]].drop_duplicates().itertuples(index=False, name=None))
    means = table.pivot_table(index=["dataset", "scenario", "run"] + [f"knob:{k}" for k in keys], columns="metric",
                              values="mean", aggfunc="first").reset_index()
    stds = table.pivot_table(index=["dataset", "scenario", "run"], columns="metric", values="std",
                             aggfunc="first").reset_index()
    heat = len(keys) == 2 and _full_grid(means, keys) and _own_on_grid(own, means, keys)
    # heatmaps: a row per experiment, a column per metric; lines: a row per (experiment, metric) the experiment has,
    # a column per knob
    present = {(d, s): {m for m, _ in metrics if m in means.columns
                        and means.loc[(means.dataset == d) & (means.scenario == s), m].notna().any()}
               for d, s in experiments}
    line_rows = [(e, m) for e in experiments for m, _ in metrics if m in present[e]]
    n_rows, n_cols = ((len(experiments), len(metrics)) if heat else (len(line_rows), len(keys)))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.3 * n_cols + 0.5, 2.6 * n_rows), squeeze=False)
    for r, (dataset, scenario) in enumerate(experiments):
        cell = means[(means.dataset == dataset) & (means.scenario == scenario)]
        spread = stds[(stds.dataset == dataset) & (stds.scenario == scenario)].set_index("run")
        mine = own[(own.dataset == dataset) & (own.scenario == scenario)] if len(own) else own
        title = f"{(labels or {}).get(dataset, dataset)} / {(scenarios or {}).get(scenario, scenario)}"
        for m_i, (metric, label) in enumerate(metrics):
            if heat:
                _heatmap(axes[r, m_i], cell, mine, keys, names, metric, label, title,
                         refs={ref.capitalize(): refs.get((dataset, scenario, ref, metric))
                               for ref in ("retrain", "original")})
                continue
            if metric not in present[(dataset, scenario)]:
                continue
            row_index = line_rows.index(((dataset, scenario), metric))
            for k_i, key in enumerate(keys):
                ax = axes[row_index, k_i]
                _lines(ax, cell, spread, mine, keys, key, names, metric, legend=m_i == 0)
                for ref, style in (("retrain", "--"), ("original", ":")):
                    value = refs.get((dataset, scenario, ref, metric))
                    if value is not None and math.isfinite(value):
                        ax.axhline(value, color="0.4", linestyle=style, linewidth=1, label=ref.capitalize())
                ax.set_title(f"{title}\n{label}", fontsize=8)
                ax.set_xlabel(names[key])
                if row_index == 0 and (len(keys) == 1 or k_i == len(keys) - 1):
                    ax.legend(fontsize=6, loc="best")
    fig.suptitle(f"Sensitivity of {run}: mean ± std over seeds at each sweep point; ★ = the table's knobs "
                 f"({own['knobs_from'].iloc[0] if len(own) else 'absent'})", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    _save(fig, pdf, png)
    plt.close(fig)


def _full_grid(means: pd.DataFrame, keys) -> bool:
    for (_, _), g in means.groupby(["dataset", "scenario"]):
        sizes = [g[f"knob:{k}"].nunique() for k in keys]
        if len(g.drop_duplicates(subset=[f"knob:{k}" for k in keys])) != int(np.prod(sizes)):
            return False
    return True


def _own_on_grid(own: pd.DataFrame, means: pd.DataFrame, keys) -> bool:
    if own.empty:
        return True
    for _, row in own.iterrows():
        g = means[(means.dataset == row["dataset"]) & (means.scenario == row["scenario"])]
        if any(_number(row[f"knob:{k}"]) not in {_number(v) for v in g[f"knob:{k}"]} for k in keys):
            return False
    return True


def _lines(ax, cell, spread, mine, keys, key, names, metric, legend: bool = True) -> None:
    """metric against one knob; one line per combination of the other knobs; the table row as a star."""
    if metric not in cell.columns or not cell[metric].notna().any():
        ax.set_visible(False)
        return
    others = [k for k in keys if k != key]
    groups = cell.groupby([f"knob:{k}" for k in others]) if others else [((), cell)]
    x_values = list(cell[f"knob:{key}"])
    for i, (value, g) in enumerate(groups):
        g = g.assign(_x=g[f"knob:{key}"].map(_number)).sort_values("_x")
        err = [spread.loc[r, metric] if r in spread.index and metric in spread.columns else np.nan for r in g["run"]]
        value = value if isinstance(value, tuple) else (value,)
        label = ", ".join(f"{names[k]}={v}" for k, v in zip(others, value)) or None
        ax.errorbar(g["_x"], g[metric], yerr=np.nan_to_num(np.asarray(err, float)), marker="o", markersize=3,
                    capsize=2, linewidth=1, color=f"C{i % 10}", label=label)
    if len(mine) and f"mean:{metric}" in mine.columns:
        ax.plot([_number(mine[f"knob:{key}"].iloc[0])], [mine[f"mean:{metric}"].iloc[0]], marker="*", markersize=12,
                color="crimson", linestyle="none", label="table row", zorder=5)
    if _log_scale([_number(v) for v in x_values]):
        from matplotlib.ticker import LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10))
        ax.xaxis.set_minor_formatter(NullFormatter())
    if others and legend:
        ax.legend(fontsize=6, loc="best")


def _heatmap(ax, cell, mine, keys, names, metric, label, title, refs: dict | None = None) -> None:
    """metric over a two-knob grid, means annotated; the table row's cell outlined."""
    if metric not in cell.columns or not cell[metric].notna().any():
        ax.set_visible(False)
        return
    grid = cell.pivot_table(index=f"knob:{keys[0]}", columns=f"knob:{keys[1]}", values=metric, aggfunc="first")
    grid = grid.sort_index(key=lambda s: s.map(_number)).sort_index(axis=1, key=lambda s: s.map(_number))
    values = grid.to_numpy(float)
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    middle = np.nanmean([np.nanmin(values), np.nanmax(values)])
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(grid.shape[1]), [str(v) for v in grid.columns], fontsize=7)
    ax.set_yticks(range(grid.shape[0]), [str(v) for v in grid.index], fontsize=7)
    ax.set_xlabel(names[keys[1]])
    ax.set_ylabel(names[keys[0]])
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid.iat[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=6,
                        color="black" if v > middle else "white")
    if len(mine):
        row = [_number(v) for v in grid.index].index(_number(mine[f"knob:{keys[0]}"].iloc[0]))
        col = [_number(v) for v in grid.columns].index(_number(mine[f"knob:{keys[1]}"].iloc[0]))
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="crimson", linewidth=2.5))
    ref_text = ", ".join(f"{name} {v:.3f}" for name, v in (refs or {}).items() if v is not None and math.isfinite(v))
    ax.set_title(f"{title}\n{label}" + (f"\n({ref_text})" if ref_text else ""), fontsize=8)
    ax.grid(False)
