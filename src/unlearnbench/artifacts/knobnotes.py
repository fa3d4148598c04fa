"""Notes under a results table (any table: UIB's, JiT's): the knob values that differ between a row's cells (per
dataset / per scenario overrides), the knobs a tuned row runs with, and rows whose method did not act.

Built from runs.csv (report.aggregate: one row per run, seed and metric, with each run's knobs and their
provenance from its run.json), so the notes state what ran, not what the config asked for. A table rule passes
runs.csv and calls `knob_notes` (plain text) and `latex_notes` (a block to put under the tabular).
"""
from __future__ import annotations

import json

import pandas as pd

from ..config.sweeps import SETTING_PREFIX, is_point, value_text

# how knobs are written in notes (LaTeX); others appear by name
SYMBOLS = {"sigma": "$\\sigma$", "beta": "$\\beta$", "tau": "$\\tau$", "lr": "$\\eta$", "gamma": "$\\gamma$",
           "alpha": "$\\alpha$"}
# metrics computed from the predictions: a run whose values equal Original's on every seed changed no prediction
PREDICTION_METRICS = ("test_acc", "test_f1", "forget_acc", "retain_acc")
REFERENCES = ("retrain", "original")


def _text(value) -> str:
    """A knob value in a note: integers plainly, other numbers to 3 significant digits (tuned values are not
    round), text as is."""
    if isinstance(value, bool):
        return value_text(value)
    if isinstance(value, (int, float)):
        if float(value).is_integer() and abs(value) < 1e6:
            return str(int(value))
        return f"{value:.3g}"
    return str(value)


def _knob_name(column: str, tex: bool) -> str:
    name = column[len("setting_knob_"):] if column.startswith("setting_knob_") else column[len("knob_"):]
    return SYMBOLS.get(name, name.replace("_", "\\_")) if tex else name


def _where(dataset: str, scenario: str, labels: dict, scenarios: dict) -> str:
    return f"{labels.get(dataset, dataset)}, {scenarios.get(scenario, scenario)}"


def _row_name(setting: str, method: str, method_names: dict, setting_names: dict) -> str:
    name = method_names.get(method, method)
    return name if setting == "standard" else f"{setting_names.get(setting, setting)} {name}"


def knob_notes(runs: pd.DataFrame | str, *, labels: dict | None = None, scenarios: dict | None = None,
               method_names: dict | None = None, setting_names: dict | None = None, tex: bool = True) -> list[str]:
    """One note per table row (setting, method) that needs one, in table order of appearance:

    - knobs whose value differs between the row's cells (by_dataset / by_scenario overrides, or tuning), e.g.
      "JiT: $\\sigma$ = 0.5 (Digits, Patterns and Biases), 0.01 (Digits, Random Data Points)";
    - tuned rows: the chosen values per cell and where they were chosen ("tuned on validation");
    - rows that did not act: at the tuned knobs no validation / tuning-set prediction changed (with how many of
      the settings tried acted), or every prediction-derived metric equals Original's on every seed."""
    if isinstance(runs, str):
        runs = pd.read_csv(runs, keep_default_na=False, na_values=[""])
    labels, scenarios = labels or {}, scenarios or {}
    method_names, setting_names = method_names or {}, setting_names or {}
    if scenarios:  # the table's scenarios only: a note on a row of another table would be noise here
        runs = runs[runs["scenario"].isin(list(scenarios))]
    rows = runs[~runs["run"].map(is_point) & ~runs["run"].isin(REFERENCES)]
    knob_cols = [c for c in runs.columns if c.startswith(("knob_", "setting_knob_"))]
    original = runs[runs["run"] == "original"]
    notes = []
    for (setting, method), row in rows.groupby(["setting", "method"], sort=False):
        name = _row_name(setting, method, method_names, setting_names)
        order = list(scenarios)
        cells = row.drop_duplicates(subset=["dataset", "scenario"])
        cells = cells.assign(_order=[(order.index(s) if s in order else len(order), labels.get(d, d))
                                     for d, s in zip(cells["dataset"], cells["scenario"])]).sort_values("_order")
        parts = []
        tuned = cells[cells["knobs_from"] == "tuned"] if "knobs_from" in cells.columns else cells.iloc[0:0]
        tuned_cols = set()
        for _, cell in tuned.iterrows():
            point = json.loads(cell["tuned_point"]) if isinstance(cell.get("tuned_point"), str) and \
                cell["tuned_point"] else {}
            tuned_cols |= {("setting_knob_" + k[len(SETTING_PREFIX):]) if k.startswith(SETTING_PREFIX)
                           else f"knob_{k}" for k in point}
        differing = [c for c in knob_cols if c in tuned_cols or cells[c].dropna().map(_text).nunique() > 1]
        for column in differing:
            present = [(cell, _text(cell[column])) for _, cell in cells.iterrows() if not pd.isna(cell[column])]
            if len({text for _, text in present}) == 1 and len(present) > 1:
                parts.append(f"{_knob_name(column, tex)} = {present[0][1]} in every cell")
                continue
            values = [f"{text} ({_where(cell['dataset'], cell['scenario'], labels, scenarios)})"
                      for cell, text in present]
            parts.append(f"{_knob_name(column, tex)} = " + ", ".join(values))
        if parts:
            how = " (tuned on validation data)" if len(tuned) else ""
            notes.append(f"{name}{how}: " + "; ".join(parts) + ".")
        for _, cell in tuned.iterrows():
            if str(cell.get("tuned_acts")).lower() in ("false", "0", "0.0"):
                acting, tried = int(float(cell["tuned_n_acting"])), int(float(cell["tuned_n_complete"]))
                where = _where(cell["dataset"], cell["scenario"], labels, scenarios)
                finding = ("not acting at any knob setting tried" if acting == 0 else
                           f"the selected setting did not act (settings that acted: {acting})")
                notes.append(f"{name} ({where}): {finding}: at the selected knobs no prediction on the validation "
                             f"split or the tuning request changed ({tried} settings tried).")
        if len(original):
            for (dataset, scenario), cell in row.groupby(["dataset", "scenario"]):
                if _equals_original(cell, original[(original.dataset == dataset) & (original.scenario == scenario)]):
                    notes.append(f"{name} ({_where(dataset, scenario, labels, scenarios)}): every prediction-derived "
                                 f"metric ({', '.join(PREDICTION_METRICS)}) equals Original's on every seed: the "
                                 f"method did not change a prediction at these knobs.")
    return notes


def _equals_original(cell: pd.DataFrame, original: pd.DataFrame) -> bool:
    keys = ["seed", "metric"]
    mine = cell[cell.metric.isin(PREDICTION_METRICS)].set_index(keys)["value"]
    ref = original[original.metric.isin(PREDICTION_METRICS)].set_index(keys)["value"]
    common = mine.index.intersection(ref.index)
    return len(common) > 0 and len(common) == len(mine) and bool((mine[common] == ref[common]).all())


def latex_notes(notes: list[str]) -> list[str]:
    """Lines to put right after \\end{tabular}: the notes in a footnote-size paragraph (nothing if none)."""
    if not notes:
        return []
    body = " \\\\\n".join(n.replace("%", "\\%") for n in notes)
    return ["\\par\\smallskip{\\footnotesize", body, "}"]
