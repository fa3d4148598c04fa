"""Aggregation into one tidy long table, relative-to-retrain metrics, and the statistics files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics, stats
from .evaluate import compute_metrics
from .io import atomic_path

ID_COLUMNS = ["dataset", "scenario", "setting", "method", "run", "seed"]


def _parse_run_dir(run_path: Path) -> tuple[str, str, int, str]:
    """(dataset, scenario, seed, run) of `<results>/{dataset}/{scenario}/seed{seed}/{run}/run.json`."""
    dataset, scenario, seed_dir, run = run_path.parent.parts[-4:]
    return dataset, scenario, int(seed_dir.removeprefix("seed")), run


def relative_metrics(wide: pd.DataFrame, forget: dict[tuple, tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    """Metrics against the retrain oracle: RIP (same seed), forget-entropy Wilcoxon (same seed, paired by
    sample; JiT §4.2), and the margin distance to the distribution of all seeds' oracles (beyond the peers).

    `forget` maps (dataset, scenario, seed, run) to that run's (forget logits, forget labels).
    """
    rows = []
    for (dataset, scenario), group in wide.groupby(["dataset", "scenario"]):
        oracles = group[group.run == "retrain"]
        oracle_f1 = oracles.set_index("seed")["test_f1"]
        oracle_margins = {s: metrics.margin(*forget[(dataset, scenario, s, "retrain")]) for s in oracles.seed}
        for r in group.itertuples():
            logits, labels = forget[(dataset, scenario, r.seed, r.run)]
            row = {"dataset": dataset, "scenario": scenario, "run": r.run, "seed": r.seed}
            if r.seed in oracle_f1.index:
                row["rip"] = float(metrics.rip(r.test_f1, oracle_f1[r.seed]))
                entropy_test = metrics.entropy_wilcoxon(
                    metrics.entropy_of_outputs(logits),
                    metrics.entropy_of_outputs(forget[(dataset, scenario, r.seed, "retrain")][0]))
                row["entropy_wilcoxon_p"] = float(entropy_test["pvalue"])
            # an oracle is compared with the other oracles only, so it is not its own reference
            others = [m for s, m in oracle_margins.items() if not (r.run == "retrain" and s == r.seed)]
            if len(others) >= 2:
                distance = metrics.margin_distance_to_oracles(metrics.margin(logits, labels), np.stack(others))
                row["oracle_rank_deviation"] = float(distance["mean_abs_rank_dev"])
                row["oracle_outside_share"] = float(distance["share_outside"])
                row["oracle_margin_ks"] = float(distance["ks_statistic"])
            rows.append(row)
    return rows


def _evaluate_run(path: str) -> tuple[dict, list[dict], tuple]:
    """One run's metrics row, its per-iteration trace rows, and its forget-set (logits, labels)."""
    path = Path(path)
    dataset, scenario, seed, run = _parse_run_dir(path)
    record = json.loads(path.read_text())
    with np.load(path.with_name("outputs.npz")) as z:
        outputs = {k: z[k] for k in z.files}
    info = record["info"]
    values = compute_metrics(outputs, info["n_classes"], seed=seed)
    values.update({k: v for k, v in info.items() if k != "n_classes"})
    ids = {"dataset": dataset, "scenario": scenario, "seed": seed, "run": run}
    return ({**ids, **values}, [{**ids, **step} for step in record["trace"]],
            (outputs["forget_logits"], outputs["forget_labels"]))


def _one_thread_per_worker() -> None:
    """The workers are the parallelism: BLAS/OpenMP thread pools in each would oversubscribe the cores
    (measured: 4x slower per run with 2 workers on 2 cores)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def aggregate(run_files: list[str], settings: dict[str, str], methods: dict[str, str], out_csv: str,
              out_parquet: str, out_traces: str, workers: int = 1) -> pd.DataFrame:
    """Evaluate every run from its saved outputs and collect one tidy long table (one row per run, seed, metric).

    Runs are evaluated in `workers` processes (each run's attacks are seeded by its own seed, so the table does
    not depend on the number of workers)."""
    run_files = [str(path) for path in run_files]
    if workers > 1 and len(run_files) > 2:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # the first run here: its libraries (scikit-learn, scipy) load and warm up once, before the fork
        evaluated = [_evaluate_run(run_files[0])]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_one_thread_per_worker) as pool:
            evaluated += pool.map(_evaluate_run, run_files[1:], chunksize=8)
    else:
        evaluated = [_evaluate_run(path) for path in run_files]
    wide_rows, trace_rows, forget = [], [], {}
    for row, trace, forget_outputs in evaluated:
        wide_rows.append(row)
        trace_rows.extend(trace)
        forget[(row["dataset"], row["scenario"], row["seed"], row["run"])] = forget_outputs
    wide = pd.DataFrame(wide_rows)
    relative = pd.DataFrame(relative_metrics(wide, forget))
    wide = wide.merge(relative, on=["dataset", "scenario", "run", "seed"], how="left")
    wide["setting"] = wide["run"].map(lambda run: settings.get(run, "standard"))
    wide["method"] = wide["run"].map(lambda run: methods.get(run, run))
    long = wide.melt(id_vars=ID_COLUMNS, var_name="metric", value_name="value").dropna(subset=["value"])
    long = long.sort_values(ID_COLUMNS + ["metric"]).reset_index(drop=True)
    with atomic_path(out_csv) as tmp:
        long.to_csv(tmp, index=False)
    with atomic_path(out_parquet) as tmp:
        long.to_parquet(tmp, index=False)
    with atomic_path(out_traces) as tmp:
        traces = pd.DataFrame(trace_rows) if trace_rows else pd.DataFrame(
            columns=["dataset", "scenario", "seed", "run", "iteration"])
        traces.to_csv(tmp, index=False)
    return long


def write_statistics(runs_csv: str, out_summary: str, out_stats: str, out_text: str, *, seed: int = 0) -> None:
    """Per-cell summaries (n, mean, std, BCa bootstrap CI, t-interval) and paired Wilcoxon comparisons."""
    long = pd.read_csv(runs_csv)
    long = long.drop(columns=["run"])
    summary = stats.summary_table(long, seed=seed)
    comparisons = stats.compare_table(long)
    with atomic_path(out_summary) as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(out_stats) as tmp:
        comparisons.to_csv(tmp, index=False)
    with atomic_path(out_text) as tmp:
        tmp.write_text(summary_markdown(summary, comparisons))


KEY_METRICS = ["test_f1", "rip", "forget_acc", "retain_acc", "mia_efficacy_svc", "mia_lr_entropy", "mia_loss_cv",
               "bias_cramers_v", "ut_seconds"]


def summary_markdown(summary: pd.DataFrame, comparisons: pd.DataFrame) -> str:
    """A short human-readable report: key metrics per method and which differences are significant."""
    lines = ["# unlearnbench summary", "",
             "Mean ± std over seeds, 95% BCa bootstrap CI in brackets. Comparisons: paired Wilcoxon signed-rank "
             "over seeds, Holm-corrected within each family (dataset, scenario, metric, comparison kind).", ""]
    for (dataset, scenario), group in summary.groupby(["dataset", "scenario"]):
        lines += [f"## {dataset} / {scenario}", ""]
        present = [m for m in KEY_METRICS if m in set(group.metric)]
        lines.append("| setting | method | " + " | ".join(present) + " |")
        lines.append("|---|---|" + "---|" * len(present))
        for (setting, method), cell in group.groupby(["setting", "method"], sort=False):
            by_metric = cell.set_index("metric")
            values = []
            for m in present:
                if m not in by_metric.index:
                    values.append("")
                    continue
                c = by_metric.loc[m]
                values.append(f"{c['mean']:.4g} ± {c['std']:.2g} [{c['ci_low']:.4g}, {c['ci_high']:.4g}]")
            lines.append(f"| {setting} | {method} | " + " | ".join(values) + " |")
        lines.append("")
        comp = comparisons[(comparisons.dataset == dataset) & (comparisons.scenario == scenario)
                           & comparisons.metric.isin(present)]
        if len(comp):
            lines += ["Differences from the reference (Holm-corrected p < 0.05 marked significant):", ""]
            for c in comp.itertuples():
                verdict = "significant" if c.significant else "not significant"
                note = f" ({c.note})" if isinstance(c.note, str) and c.note else ""
                lines.append(f"- {c.setting}/{c.method} vs {c.reference} on {c.metric}: mean diff {c.mean_diff:+.4g}, "
                             f"p = {c.pvalue:.3g}, Holm p = {c.pvalue_holm:.3g}, r = {c.rank_biserial:+.2f}, "
                             f"n = {c.n}: {verdict}{note}")
            lines.append("")
    return "\n".join(lines) + "\n"
