"""Aggregation into one tidy long table, relative-to-retrain metrics, and the statistics files."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..evaluation import metrics
from ..core import seeds
from ..evaluation import stats as stat_tests
from ..core.errors import InputFileError
from ..evaluation.evaluate import compute_metrics
from ..core.io import atomic_path, read_bundle, read_table

ID_COLUMNS = ["dataset", "scenario", "setting", "method", "run", "seed"]
ID_KEYS = ("dataset", "scenario", "seed", "run", "method", "setting")  # what every run.json says about itself
# per-run columns of runs.csv besides the ids (knobs_columns): where the knobs came from, then one column per knob
# (`knob_<name>`) and setting knob (`setting_knob_<name>`) of every run
RUN_COLUMNS = ["sweep", "point", "knobs_from", "overridden", "tuned_point", "tuned_scenario", "tuned_acts",
               "tuned_n_acting", "tuned_n_complete"]


def knob_columns(identity: dict) -> dict:
    """A run's knobs and their provenance as runs.csv columns (from its run.json identity): `sweep` (the swept run
    a sweep point belongs to, else empty), `knobs_from` (config, sweep, tuned; reference for retrain/original),
    `point` (a sweep point's flat knob values, JSON), `overridden` (by_dataset/by_scenario keys), the tuning result (tuned runs), `knob_<k>`, `setting_knob_<k>`."""
    tuned = identity.get("tuned") or {}
    row = {"sweep": identity.get("sweep_of") or "",
           "point": json.dumps(identity["point"], sort_keys=True) if identity.get("point") else "",
           "knobs_from": identity.get("knobs_from") or ("reference" if identity.get("run") in ("retrain", "original")
                                                        else "config"),
           "overridden": ";".join(identity.get("overridden") or []),
           "tuned_point": json.dumps(tuned["point"], sort_keys=True) if tuned.get("point") else "",
           "tuned_scenario": tuned.get("scenario") or "", "tuned_acts": tuned.get("chosen_acts"),
           "tuned_n_acting": tuned.get("n_acting"), "tuned_n_complete": tuned.get("n_complete")}
    row.update({f"knob_{k}": v for k, v in (identity.get("knobs") or {}).items()})
    row.update({f"setting_knob_{k}": v for k, v in (identity.get("setting_knobs") or {}).items()})
    return row


def _uniform(table: pd.DataFrame, columns) -> pd.DataFrame:
    """A knob column that holds numbers for some runs and text for others becomes text (parquet needs one type)."""
    for c in columns:
        kinds = {type(v) for v in table[c].dropna()}
        if len(kinds) > 1 and not kinds <= {int, float, bool}:
            table[c] = table[c].map(lambda v: v if pd.isna(v) else str(v))
    return table


def relative_metrics(wide: pd.DataFrame, forget: dict[tuple, tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    """Metrics against the retrain oracle: RIP (same seed), the forget-set entropy shift (same seed, paired by
    sample; JiT §4.2), and the margin distance to the distribution of all seeds' oracles (beyond the peers).

    The entropy shift `forget_entropy_median_diff` is one number per seed, the median over forget samples of
    H_run − H_retrain; the test of JiT §4.2 is then one Wilcoxon signed-rank test over seeds per (dataset,
    scenario, method) in stats.csv (this metric, family vs_retrain: retrain's own value is 0), valid because seeds
    are independent. A per-seed p-value is not a metric: it is never stored, and summaries refuse p-values
    (stats.summary_table).

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
                row["forget_entropy_median_diff"] = metrics.entropy_median_diff(
                    logits, forget[(dataset, scenario, r.seed, "retrain")][0])
            # an oracle is compared with the other oracles only, so it is not its own reference
            others = [m for s, m in oracle_margins.items() if not (r.run == "retrain" and s == r.seed)]
            if len(others) >= 2:
                distance = metrics.margin_distance_to_oracles(metrics.margin(logits, labels), np.stack(others))
                row["oracle_rank_deviation"] = float(distance["mean_abs_rank_dev"])
                row["oracle_outside_share"] = float(distance["share_outside"])
                row["oracle_margin_ks"] = float(distance["ks_statistic"])
            rows.append(row)
    return rows


OUTPUT_ARRAYS = tuple(f"{s}_{k}" for s in ("test", "forget", "retain") for k in ("logits", "labels"))


def _evaluate_run(paths: tuple[str, str]) -> tuple[dict, list[dict], tuple]:
    """One run's metrics row (identified by what its run.json says it is), its per-iteration trace rows, and its
    forget-set (logits, labels)."""
    outputs, record = read_bundle(paths[1], json_path=paths[0], what="run outputs", required=OUTPUT_ARRAYS)
    who = record.get("identity")
    if not who or not set(ID_KEYS) <= set(who):
        raise InputFileError(f"{paths[0]}: the run record does not say which run it is (no identity with "
                             f"{', '.join(ID_KEYS)}); it was written by an older version: delete it and rerun")
    if not {"info", "trace"} <= set(record) or "n_classes" not in record["info"]:
        raise InputFileError(f"{paths[0]}: not a run record (no info with n_classes, or no trace); delete it and "
                             f"rerun the workflow so the job that writes it runs again")
    info = record["info"]
    ids = {k: who[k] for k in ID_KEYS}
    values = compute_metrics(outputs, info["n_classes"], seed=seeds.derive(ids["seed"], "attack"))
    values.update({k: v for k, v in info.items() if k != "n_classes"})
    return ({**ids, **knob_columns(who), **values}, [{**{k: ids[k] for k in ("dataset", "scenario", "seed", "run")}, **step}
                                for step in record["trace"]],
            (outputs["forget_logits"], outputs["forget_labels"]))


def _one_thread_per_worker() -> None:
    """The workers are the parallelism: BLAS/OpenMP thread pools in each would oversubscribe the cores
    (measured: 4x slower per run with 2 workers on 2 cores). A worker writes nothing and dies with its job
    (unlearnbench.runtime.lifetime)."""
    import signal

    from threadpoolctl import threadpool_limits

    from ..runtime.lifetime import die_with_parent

    die_with_parent(signal.SIGKILL)
    threadpool_limits(1)


def aggregate(*, runs: list[str], outputs: list[str], csv: str, parquet: str, traces: str, threads: int = 1) -> pd.DataFrame:
    """Rule aggregate: evaluate every run from its saved outputs and collect one tidy long table (one row per run,
    seed, metric); each run is identified by its run.json (`runs[i]`, with outputs `outputs[i]`).

    Runs are evaluated in `threads` processes (each run's attacks are seeded by its own seed, so the table does
    not depend on the number of workers)."""
    pairs = [(str(r), str(o)) for r, o in zip(runs, outputs)]
    if threads > 1 and len(pairs) > 2:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # the first run here: its libraries (scikit-learn, scipy) load and warm up once, before the fork
        evaluated = [_evaluate_run(pairs[0])]
        with ProcessPoolExecutor(threads, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_one_thread_per_worker) as pool:
            evaluated += pool.map(_evaluate_run, pairs[1:], chunksize=8)
    else:
        evaluated = [_evaluate_run(pair) for pair in pairs]
    wide_rows, trace_rows, forget = [], [], {}
    for row, trace, forget_outputs in evaluated:
        wide_rows.append(row)
        trace_rows.extend(trace)
        forget[(row["dataset"], row["scenario"], row["seed"], row["run"])] = forget_outputs
    wide = pd.DataFrame(wide_rows)
    relative = pd.DataFrame(relative_metrics(wide, forget))
    wide = wide.merge(relative, on=["dataset", "scenario", "run", "seed"], how="left")
    knobs = sorted(c for c in wide.columns if c.startswith(("knob_", "setting_knob_")))
    wide = _uniform(wide, knobs)
    long = wide.melt(id_vars=ID_COLUMNS + RUN_COLUMNS + knobs, var_name="metric",
                     value_name="value").dropna(subset=["value"])
    long = long.sort_values(ID_COLUMNS + ["metric"]).reset_index(drop=True)
    with atomic_path(csv) as tmp:
        long.to_csv(tmp, index=False)
    with atomic_path(parquet) as tmp:
        long.to_parquet(tmp, index=False)
    with atomic_path(traces) as tmp:
        table = pd.DataFrame(trace_rows) if trace_rows else pd.DataFrame(
            columns=["dataset", "scenario", "seed", "run", "iteration"])
        table.to_csv(tmp, index=False)
    return long


def write_statistics(*, runs: str, summary: str, stats: str, text: str, seed: int = 0) -> None:
    """Rule statistics: per-cell summaries (n, mean, std, BCa bootstrap CI, t-interval) and paired Wilcoxon
    comparisons of the runs table `runs`."""
    out_summary, out_stats, out_text = summary, stats, text
    long = table_rows(read_table(runs, "runs table"))
    summary = stat_tests.summary_table(long, seed=seed)
    comparisons = stat_tests.compare_table(long)
    with atomic_path(out_summary) as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(out_stats) as tmp:
        comparisons.to_csv(tmp, index=False)
    with atomic_path(out_text) as tmp:
        tmp.write_text(summary_markdown(summary, comparisons))


def table_rows(long: pd.DataFrame) -> pd.DataFrame:
    """The runs that are table rows (sweep points left out: summary/sweeps.csv and the sensitivity figures show
    them), with the columns the statistics read."""
    from ..config.sweeps import is_point

    long = long[~long["run"].map(is_point)]
    return long[[c for c in ("dataset", "scenario", "setting", "method", "seed", "metric", "value")]]


KEY_METRICS = ["test_f1", "rip", "forget_acc", "retain_acc", "mia_efficacy_svc", "mia_lr_entropy", "mia_loss_cv",
               "forget_entropy_median_diff", "bias_cramers_v", "ut_seconds"]


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
