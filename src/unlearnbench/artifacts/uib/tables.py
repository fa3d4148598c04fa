"""LaTeX tables in the layout of UIB Table 1 (booktabs; mean ± std over seeds per cell)."""
from __future__ import annotations

import pandas as pd

from ...core.io import atomic_path, read_table

# (metric in summary.csv, column header, scale to the paper's unit, decimals: UT gets 3, as CPU-scale runs take
# seconds)
UIB_COLUMNS = [("rip", "RIP (\\%)", 1.0, 2), ("mia_efficacy_svc", "MIA-Efficacy (\\%)", 100.0, 2),
               ("test_f1", "Testing F1 Score (\\%)", 100.0, 2), ("ut_minutes", "UT (min)", 1.0, 3)]
SETTING_ORDER = ["standard", "sparsity", "uib"]
SETTING_NAMES = {"standard": "Standard", "sparsity": "Sparsity", "uib": "UIB"}
# UIB Table 1's abbreviations, in its row order; methods beyond the table follow under these names. UIB's SR
# ("Scrubbing [12, 10]") is Golatkar et al.'s Fisher scrubbing, run as Unlearn-Sparse's fisher_new; SCRUB (Kurmanji
# et al. 2023, not cited by UIB) keeps its own row; "Fisher" is Unlearn-Sparse's older `fisher` variant.
METHOD_NAMES = {"retrain": "Retrain", "retrain_replace": "Retrain ($\\Delta D \\to \\tilde{z}$)",
                "retrain_decorrelated": "Retrain (decorrelated)", "finetune": "FT", "fisher_new": "SR", "influence": "IF",
                "l1_sparse": "$\\ell_1$-sparse", "gradient_ascent": "GA", "random_label": "RL",
                "scrub": "SCRUB", "fisher": "Fisher", "jit": "JiT"}


def _tex(text: str) -> str:
    return str(text).replace("_", "\\_").replace("%", "\\%")


# per-run flags (evaluate.compute_metrics) whose metric is NaN where the flag is 1: the table says so in its Note
UNDEFINED_FLAGS = {"mia_efficacy_svc_undefined": ("MIA-Efficacy", "no membership signal in the attack's training data: "
                                                                   "retain and test confidences indistinguishable")}


def _notes(cells: dict, dataset: str, scenario: str, setting: str, method: str, prefix: str) -> list[str]:
    """What a row's cells do not show: seeds where a metric is undefined (and so left out of its mean ± std)."""
    notes = []
    for flag, (column, reason) in UNDEFINED_FLAGS.items():
        row = cells.get((dataset, scenario, setting, method, flag))
        if row is None or pd.isna(row["mean"]) or row["mean"] == 0:
            continue
        n = int(row["n"])
        k = int(round(row["mean"] * n))
        shown = "no value" if k == n else f"the cell is over the other {n - k} seeds"
        notes.append(f"{prefix}{column} undefined in {k}/{n} seeds ({reason}); {shown}")
    return notes


# A row whose Cramér's V (test colour vs prediction) exceeds the original model's by more than this (means over
# seeds) gets a note: unlearning made the predictions follow the colour more, the opposite of the bias scenario's aim
BIAS_RISE = 0.05


def _bias_notes(cells: dict, original_v: dict, dataset: str, scenario: str, setting: str, method: str,
                prefix: str) -> list[str]:
    row = cells.get((dataset, scenario, setting, method, "bias_cramers_v"))
    before = original_v.get(dataset, {}).get(scenario)
    if row is None or before is None or pd.isna(row["mean"]) or pd.isna(before) or row["mean"] <= before + BIAS_RISE:
        return []
    return [f"{prefix}Cramér's V (colour, prediction) {row['mean']:.2f}, Original {before:.2f}: predictions follow "
            f"the colour more than before unlearning"]


def _cell(row: pd.Series | None, scale: float, decimals: int) -> str:
    if row is None or pd.isna(row["mean"]):
        return "--"
    mean = row["mean"] * scale
    if pd.isna(row["std"]):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} $\\pm$ {row['std'] * scale:.{decimals}f}"


def uib_table(*, summary: str, table: str, runs: str | None = None, labels: dict[str, str] | None = None,
              scenarios: dict[str, str] | None = None, seed_notes: list | tuple = ()) -> str:
    """Rule tables: rows scenario × setting × method; column groups: dataset label (datasets sharing a label, e.g.
    Colored digits for the bias scenario and plain digits for the random one, share a column group). `scenarios`
    maps each scenario's name to its heading, in the config's order (unlearnbench.scenarios labels). With `runs`
    (runs.csv), notes under the table state knob values that differ between a row's cells, tuned knobs, and rows
    whose method did not act (unlearnbench.artifacts.knobnotes)."""
    from ..knobnotes import knob_notes, latex_notes

    out_tex = table
    summary = read_table(summary, "summary table")
    scenarios = scenarios or {s: s for s in dict.fromkeys(summary.scenario)}
    original_v = {}  # label -> scenario -> Original's mean Cramér's V
    for r in summary[(summary.method == "original") & (summary.metric == "bias_cramers_v")].itertuples():
        original_v.setdefault((labels or {}).get(r.dataset, r.dataset), {})[r.scenario] = r.mean
    summary = summary[summary.method != "original"].copy()
    shared = summary[["dataset", "scenario"]].drop_duplicates()
    shared = shared.assign(label=shared.dataset.map(lambda d: (labels or {}).get(d, d)))
    clash = shared[shared.duplicated(["label", "scenario"], keep=False)]
    if len(clash):
        raise ValueError(f"datasets {sorted(clash.dataset)} share the table label {clash.label.iloc[0]!r} and run the "
                         f"same scenario {clash.scenario.iloc[0]!r}: their cells would overwrite each other; give "
                         f"each a distinct datasets.<name>.label")
    summary["dataset"] = summary["dataset"].map(lambda d: (labels or {}).get(d, d))
    datasets = list(dict.fromkeys(summary.dataset))
    cells = {tuple(k): r for k, r in zip(summary[["dataset", "scenario", "setting", "method", "metric"]]
                                         .itertuples(index=False), (r for _, r in summary.iterrows()))}
    n_metric = len(UIB_COLUMNS)
    row_notes = {}
    for key in summary[["scenario", "setting", "method"]].drop_duplicates().itertuples(index=False):
        notes = []
        for d in datasets:
            prefix = f"{d}: " if len(datasets) > 1 else ""
            notes += _notes(cells, d, *key, prefix=prefix) + _bias_notes(cells, original_v, d, *key, prefix=prefix)
        if notes:
            row_notes[tuple(key)] = "; ".join(notes)
    note_col = bool(row_notes)
    lines = [
        "% Generated by unlearnbench (rule tables). Mean $\\pm$ std over seeds (UIB Table 1 leaves RIP and UT without "
        "std;\n% here every cell has it); RIP vs the same seed's Retrain.",
        "\\begin{tabular}{lll" + "r" * (n_metric * len(datasets)) + ("p{5cm}" if note_col else "") + "}",
        "\\toprule",
        " & & & " + " & ".join(f"\\multicolumn{{{n_metric}}}{{c}}{{{_tex(d)}}}" for d in datasets)
        + (" & " if note_col else "") + " \\\\",
        "".join(f"\\cmidrule(lr){{{4 + i * n_metric}-{3 + (i + 1) * n_metric}}}" for i in range(len(datasets))),
        "Scenario & Setting & Method & " + " & ".join(h for _ in datasets for _, h, _, _ in UIB_COLUMNS)
        + (" & Note" if note_col else "") + " \\\\",
        "\\midrule",
    ]
    for s_i, scenario in enumerate([s for s in scenarios if s in set(summary.scenario)]):
        if s_i:
            lines.append("\\midrule")
        first_in_scenario = True
        sub = summary[summary.scenario == scenario]
        for setting in [s for s in SETTING_ORDER if s in set(sub.setting)]:
            present = list(dict.fromkeys(sub[sub.setting == setting].method))
            methods = [m for m in METHOD_NAMES if m in present] + [m for m in present if m not in METHOD_NAMES]
            for m_i, method in enumerate(methods):
                values = []
                for dataset in datasets:
                    for metric, _, scale, decimals in UIB_COLUMNS:
                        row = cells.get((dataset, scenario, setting, method, metric))
                        values.append(_cell(row, scale, decimals))
                name = METHOD_NAMES.get(method, _tex(method))
                if note_col:
                    values.append(_tex(row_notes.get((scenario, setting, method), "")))
                lines.append(" & ".join([_tex(scenarios[scenario]) if first_in_scenario else "",
                                         SETTING_NAMES.get(setting, _tex(setting)) if m_i == 0 else "", name] + values) + " \\\\")
                first_in_scenario = False
    lines += ["\\bottomrule", "\\end{tabular}"]
    if runs is not None:
        lines += latex_notes(list(seed_notes) + knob_notes(runs, labels=labels, scenarios=scenarios,
                                                           method_names=METHOD_NAMES, setting_names=SETTING_NAMES))
    lines.append("")
    text = "\n".join(lines)
    with atomic_path(out_tex) as tmp:
        tmp.write_text(text)
    return text
