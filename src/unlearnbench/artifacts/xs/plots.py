"""Xu & Strohmer artifacts: Fig. 1 (frontiers), Fig. 2 (output densities), Fig. 3 (MNIST/digits trajectories),
Fig. 4 analogue (barycenter images) and the frontier table at fixed DP-gap budgets."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...core.io import atomic_path, read_bundle, read_json
from ..uib.plots import _pyplot, _save

METHOD_LABELS = {"unconstrained": "Unconstrained LR", "repair_quantile": "W2 repair, per-feature (λ)",
                 "repair_emd": "W2 repair, exact OT (λ)", "repair_sinkhorn": "W2 repair, Sinkhorn (λ)",
                 "repair_auto": "W2 repair, OT (λ)", "mi": "MI-regularised (γ)",
                 "fairlearn_eg": "fairlearn EG, DP (ε)"}
METHOD_ORDER = list(METHOD_LABELS)
PARAM_NAMES = {"repair": "λ", "mi": "γ", "fairlearn_eg": "ε", "unconstrained": "–"}


def _param_name(method: str) -> str:
    return PARAM_NAMES.get(method.split("_")[0], PARAM_NAMES.get(method, "param"))


def load_frontier(paths: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


def frontier_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and s.d. over folds per (dataset, method, param, split)."""
    metrics = ["accuracy", "auroc", "dp_gap"]
    grouped = frame.groupby(["dataset", "method", "param", "split"])[metrics]
    out = grouped.mean().join(grouped.std(ddof=1), rsuffix="_sd").join(grouped.size().rename("folds"))
    return out.reset_index()


def frontier_figure(*, frontiers: list[str], labels: dict, pdf: str, png: str) -> None:
    """Rule xs_frontier_figure (Fig. 1): per dataset, accuracy (↑) and AUROC (↑) against the DP gap (↓) on the test
    folds; each method's curve over its trade-off parameter; points = mean, error bars = ±1 s.d. over folds."""
    plt, _ = _pyplot()
    summary = frontier_summary(load_frontier(frontiers))
    summary = summary[summary.split == "test"]
    datasets = list(dict.fromkeys(summary.dataset))
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.8 * len(datasets)), squeeze=False)
    colours = plt.get_cmap("tab10")
    for r, dataset in enumerate(datasets):
        sub = summary[summary.dataset == dataset]
        methods = [m for m in METHOD_ORDER if m in set(sub.method)] + sorted(set(sub.method) - set(METHOD_ORDER))
        for c, metric in enumerate(("accuracy", "auroc")):
            ax = axes[r, c]
            for i, method in enumerate(methods):
                cur = sub[sub.method == method].sort_values("param")
                style = dict(color=colours(i), marker="o" if len(cur) > 1 else "*", ms=4 if len(cur) > 1 else 11,
                             capsize=2, lw=1.2, elinewidth=0.7)
                ax.errorbar(cur.dp_gap, cur[metric], xerr=cur.dp_gap_sd, yerr=cur[f"{metric}_sd"],
                            label=METHOD_LABELS.get(method, method), **style)
            ax.set_xlabel("DP gap |P[Ŷ=1|Z=1] − P[Ŷ=1|Z=0]| (↓)")
            ax.set_ylabel(("Accuracy" if metric == "accuracy" else "AUROC") + " (↑)")
            ax.set_title(f"{labels.get(dataset, dataset)}: {'accuracy' if metric == 'accuracy' else 'AUROC'} vs DP gap")
        axes[r, 1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Feature-unlearning frontiers (mean ± 1 s.d. over folds)", y=1.0)
    fig.tight_layout()
    _save(fig, pdf, png)
    plt.close(fig)


def select_at_budgets(frame: pd.DataFrame, budgets: list[float]) -> pd.DataFrame:
    """Per (dataset, budget, method): the trade-off value with the best mean *validation* accuracy among those whose
    mean validation DP gap is within the budget; its test metrics (mean and s.d. over folds)."""
    summary = frontier_summary(frame)
    val, test = summary[summary.split == "val"], summary[summary.split == "test"].set_index(["dataset", "method", "param"])
    rows = []
    for dataset in dict.fromkeys(summary.dataset):
        for budget in budgets:
            for method in dict.fromkeys(val[val.dataset == dataset].method):
                cand = val[(val.dataset == dataset) & (val.method == method) & (val.dp_gap <= budget)]
                row = {"dataset": dataset, "budget": budget, "method": method}
                if len(cand):
                    best = cand.sort_values(["accuracy", "param"], ascending=[False, True]).iloc[0]
                    t = test.loc[(dataset, method, best.param)]
                    row.update({"param": best.param, "val_dp_gap": best.dp_gap,
                                **{k: t[k] for k in ("accuracy", "accuracy_sd", "auroc", "auroc_sd", "dp_gap",
                                                     "dp_gap_sd")}})
                rows.append(row)
    return pd.DataFrame(rows)


def frontier_table(*, frontiers: list[str], table: str, labels: dict, budgets: list[float]) -> str:
    """Rule xs_frontier_table: LaTeX (booktabs) table of the frontier at fixed DP-gap budgets."""
    selected = select_at_budgets(load_frontier(frontiers), budgets)
    pm = lambda m, s: "--" if pd.isna(m) else f"{m:.3f} $\\pm$ {s:.3f}"  # noqa: E731
    lines = ["% Generated by unlearnbench (rule xs_frontier_table). Per DP-gap budget b, each method's trade-off value is",
             "% chosen on the validation split (best mean accuracy among values whose mean validation DP gap is <= b);",
             "% the cells are its test-fold metrics, mean $\\pm$ s.d. over folds. --: no value meets the budget.",
             "% Repeated rows are selections, not duplicates: repair at lambda = 0 is the unconstrained model itself, and a",
             "% method whose validation frontier meets two budgets at the same value is chosen at that value for both.",
             "\\begin{tabular}{llcrrrr}", "\\toprule",
             "Dataset & Method & Budget $b$ & Param. & Accuracy ($\\uparrow$) & AUROC ($\\uparrow$) & DP gap ($\\downarrow$) \\\\",
             "\\midrule"]
    for d_i, dataset in enumerate(dict.fromkeys(selected.dataset)):
        if d_i:
            lines.append("\\midrule")
        sub = selected[selected.dataset == dataset]
        first = True
        for budget in dict.fromkeys(sub.budget):
            rows = sub[sub.budget == budget]
            rows = rows.assign(order=rows.method.map(lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 99))
            for _, row in rows.sort_values("order").iterrows():
                param = ("--" if pd.isna(row.get("param")) or row.method == "unconstrained"
                         else f"{_param_name(row.method)}={row['param']:g}")
                name = METHOD_LABELS.get(row.method, row.method).split(" (")[0]
                lines.append(" & ".join([labels.get(dataset, dataset).replace("_", "\\_") if first else "", name,
                                         f"{budget:g}", param, pm(row.get("accuracy"), row.get("accuracy_sd")),
                                         pm(row.get("auroc"), row.get("auroc_sd")),
                                         pm(row.get("dp_gap"), row.get("dp_gap_sd"))]) + " \\\\")
                first = False
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    text = "\n".join(lines)
    with atomic_path(table) as tmp:
        tmp.write_text(text)
    return text


def trajectory_figure(*, trajectories_csv: str, references: str, pdf: str, png: str) -> None:
    """Rule xs_trajectory_figure (Fig. 3): per (γ, epochs), a train panel (batch MI as the authors log it; unlearn
    and remain accuracy) and a test panel (population MI on test; test accuracy on the unlearned class, the other
    classes and overall); lines = mean, bands = ±1 s.d. over trials; dotted: the retrained model."""
    plt, _ = _pyplot()
    frame = pd.read_csv(trajectories_csv)
    refs = read_json(references, "trajectory references")
    settings = list(dict.fromkeys(zip(frame.gamma, frame.epochs)))
    fig, axes = plt.subplots(len(settings), 2, figsize=(11, 3.2 * len(settings)), squeeze=False)
    panels = (("train", "mi_batch", [("acc_unlearn", "unlearn acc.", "#D55E00"), ("acc_remain", "remain acc.", "#009E73")]),
              ("test", "mi_test_pop", [("acc_test_class", "test acc., unlearned class", "#D55E00"),
                                       ("acc_test_other", "test acc., other classes", "#009E73"),
                                       ("acc_test", "test acc.", "#CC79A7")]))
    for r, (gamma, epochs) in enumerate(settings):
        sub = frame[(frame.gamma == gamma) & (frame.epochs == epochs)]
        for c, (panel, mi_col, accs) in enumerate(panels):
            ax = axes[r, c]
            g = sub.groupby("epoch")
            mean, sd = g[mi_col].mean(), g[mi_col].std(ddof=0)
            ax.plot(mean.index, mean, color="#0072B2", lw=2, label="mutual information")
            ax.fill_between(mean.index, mean - sd, mean + sd, color="#0072B2", alpha=0.2)
            ax.set_ylabel("I(Ŷ; Z) (nats)", color="#0072B2")
            ax.set_xlabel("epoch")
            ax2 = ax.twinx()
            for col, label, colour in accs:
                m, s = g[col].mean(), g[col].std(ddof=0)
                ax2.plot(m.index, m, ls="--", color=colour, lw=1.6, label=label)
                ax2.fill_between(m.index, m - s, m + s, color=colour, alpha=0.15)
                if "retrain" in refs:
                    ax2.axhline(refs["retrain"][col], color=colour, ls=":", lw=1)
            ax2.set_ylim(-0.02, 1.02)
            ax2.set_ylabel("accuracy")
            ax2.grid(False)
            ax.set_title(f"{panel}: γ = {gamma:g}, {int(epochs)} epochs")
            if r == 0:
                lines = [ln for ln in ax.get_lines()[:1] + ax2.get_lines() if not ln.get_label().startswith("_")]
                ax2.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="lower left")
    fig.suptitle("Marginal unlearning trajectories (mean ± 1 s.d. over trials; dotted: retrained on the remain set)",
                 y=1.0)
    fig.tight_layout()
    _save(fig, pdf, png)
    plt.close(fig)


def density_figure(*, densities_npz: str, pdf: str, png: str) -> None:
    """Rule xs_density_figure (Fig. 2): kernel density estimates of f(X_r) (left) and f(X_u) (right) at the
    snapshot epochs (colour: epoch), per objective; dashed black: the oracle retrained on D_r."""
    from scipy.stats import gaussian_kde

    plt, _ = _pyplot()
    arrays, meta = read_bundle(densities_npz)
    snapshots = arrays["snapshots"]
    names = {"marginal": "marginal unlearning (γ·I(Ŷ; Z))", "ga": "gradient ascent (−MSE_u)",
             "ga_retain": "gradient ascent + retain (MSE_r − α·MSE_u)"}
    fig, axes = plt.subplots(3, 2, figsize=(10, 8.5), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for r, objective in enumerate(names):
        for c, part in enumerate(("r", "u")):
            ax = axes[r, c]
            values = arrays[f"{objective}_{part}"]
            lo = min(values.min(), arrays[f"oracle_{part}"].min())
            hi = max(values.max(), arrays[f"oracle_{part}"].max())
            grid = np.linspace(lo - 0.1 * (hi - lo + 1e-9), hi + 0.1 * (hi - lo + 1e-9), 400)
            for i, epoch in enumerate(snapshots):
                ax.plot(grid, _kde(gaussian_kde, values[i], grid), color=cmap(i / max(1, len(snapshots) - 1)),
                        lw=1.4, label=f"epoch {int(epoch)}")
            ax.plot(grid, _kde(gaussian_kde, arrays[f"oracle_{part}"], grid), "k--", lw=1, label="oracle (D_r only)")
            ax.set_title(f"{names[objective]}: p(f(X_{part}))", fontsize=9)
            ax.set_xlabel("model output f(x)")
            ax.set_ylabel("density")
        if r == 0:
            axes[r, 1].legend(fontsize=7)
    fig.suptitle("Output densities over epochs (reconstruction of Fig. 2: retain left, unlearn right)", y=1.0)
    fig.tight_layout()
    _save(fig, pdf, png)
    plt.close(fig)


def _kde(gaussian_kde, values, grid):
    values = np.asarray(values, dtype=np.float64)
    if np.ptp(values) < 1e-9:  # a point mass: draw a narrow bump
        return np.exp(-0.5 * ((grid - values.mean()) / 1e-2) ** 2) / (1e-2 * np.sqrt(2 * np.pi))
    return gaussian_kde(values)(grid)


def barycenter_figure(*, images_npz: str, pdf: str, png: str) -> None:
    """Rule xs_barycenter_figure (Fig. 4 analogue): per group, rows X, Bary(X) = ½X + ½T(X), T(X)."""
    plt, _ = _pyplot()
    arrays, meta = read_bundle(images_npz)
    n = arrays["x_0"].shape[0]
    fig, axes = plt.subplots(7, n, figsize=(1.0 * n, 7.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for g, top in ((0, 0), (1, 4)):
        for row, key, label in ((0, "x", "X"), (1, "bary", "Bary(X)"), (2, "t", "T(X)")):
            for i in range(n):
                axes[top + row, i].imshow(arrays[f"{key}_{g}"][i], interpolation="nearest")
            axes[top + row, 0].text(-0.15, 0.5, label, transform=axes[top + row, 0].transAxes, ha="right",
                                    va="center", fontsize=9)
        axes[top, n // 2].set_title(f"group Z = {g} → barycenter → group Z = {1 - g}", fontsize=9)
    s = meta["settings"]
    probe = f"{s['attribute']} (Z) probe" if s.get("source") == "celeba" else "colour (Z) probe"
    fig.suptitle(f"Barycenter images ({s['source']}, {meta['solver']} OT in pixel space; {probe} accuracy "
                 f"{meta['probe_acc_x']:.2f} on X, {meta['probe_acc_bary']:.2f} on Bary(X))", fontsize=9, y=0.995)
    _save(fig, pdf, png)
    plt.close(fig)
