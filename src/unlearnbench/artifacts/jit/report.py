"""JiT's artifacts (Foster et al., TMLR 2025): the per-scenario tables (Tables 2-6), the per-class breakdowns
(Tables 7-11), the forget-set entropy figure (Fig. 4) and the runtime figure (Fig. 5). The 2-D toy (Fig. 2) is
unlearnbench.artifacts.jit.toy. Which artifacts a configuration makes: `artifacts.jit`, planned once by the config
parse (Plan.jit: unlearnbench.config.jit.jit_plan; docs/jit.md).

Columns follow the paper's definitions per scenario (`Scenario.evaluation_of`, the sets JiT's code evaluates):
  class  (full class, sub-class): D_r acc. = accuracy on the test images of the retained classes
         (`retain_class_test_acc`; sub-class: every other fine class, scored against its superclass), D_f acc. =
         accuracy on the test images of the forgotten (sub-)class (`forget_class_test_acc`; sub-class: against its
         superclass);
  sample (random, worst-case 50 with retain: rest): D_r acc. = accuracy on the whole test set (`test_acc`),
         D_f acc. = accuracy on the forgotten training images (`forget_acc`);
  both:  MIA = the LR-entropy attack (`mia_lr_entropy`: retain training images vs the whole test set, mean
         "member" prediction on the forget set), ZS = the method reads only the forget set (its declared `reads`),
         runtime = the method alone in seconds (`ut_seconds`; the retrain oracle: its training time).
Every number is mean ± std over seeds, ×100 for the percentages, as the paper prints them.

Torch-free at import (the Snakefile reads zero_shot_map); pandas and matplotlib load in the jobs.
"""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np

from ...core.io import atomic_path

# JiT's row order and abbreviations (Tables 1-6); methods not listed follow, by registry name
METHOD_ORDER = ["original", "retrain", "finetune", "amnesiac", "scrub", "ssd", "bad_teacher", "unsir", "gkt", "emmn",
                "boundary_shrink", "jit"]
SHORT_NAMES = {"original": "BSLN", "retrain": "RTRN", "finetune": "FNTN", "amnesiac": "AMN", "scrub": "SCRUB",
               "ssd": "SSD", "bad_teacher": "BT", "unsir": "UNSIR", "gkt": "GKT", "emmn": "EMMN",
               "boundary_shrink": "BDSH", "jit": "JiT"}
# the appendix tables' names (Tables 7-11; "Ours" there)
LONG_NAMES = {"original": "Baseline", "retrain": "Retrain", "finetune": "Finetune", "amnesiac": "Amnesiac",
              "scrub": "SCRUB", "ssd": "SSD", "bad_teacher": "Teacher", "unsir": "UNSIR", "gkt": "GKT", "emmn": "EMMN",
              "boundary_shrink": "BDSH", "jit": "JiT"}
OTHER_NAMES = {"gradient_ascent": "GA", "random_label": "RL", "influence": "IF", "l1_sparse": "$\\ell_1$-sparse",
               "fisher": "Fisher"}
SETTING_ORDER = ["standard", "sparsity", "uib"]

# (scenario evaluation kind) -> metric of each column
COLUMNS = {
    "class": {"d_r": "retain_class_test_acc", "d_f": "forget_class_test_acc", "mia": "mia_lr_entropy"},
    "sample": {"d_r": "test_acc", "d_f": "forget_acc", "mia": "mia_lr_entropy"},
}
RUNTIME = "ut_seconds"
HEADERS = {"d_r": "$\\mathcal{D}_r$ acc.", "d_f": "$\\mathcal{D}_f$ acc.", "mia": "MIA", "runtime": "Runtime (s)"}
DEFINITIONS = {
    "class": "D_r acc. = accuracy on the test images of the retained classes; D_f acc. = accuracy on the test "
             "images of the forgotten (sub-)class (sub-class: scored against its superclass)",
    "sample": "D_r acc. = accuracy on the whole test set; D_f acc. = accuracy on the forgotten training images",
}
CHECK, CROSS = "$\\checkmark$", "$\\times$"
# A scenario is untestable on a dataset when the retrain oracle's D_f acc. is within this of the original's (means
# over seeds): the column then cannot tell forgetting from doing nothing (e.g. a sub-class scored against its
# superclass, which the oracle still predicts from the sibling fine classes). Known only once the oracle is trained,
# so it is a note under the table (and a line in the job's log), not a check before the run.
UNTESTABLE_GAP = 0.01
# A method row whose D_r acc. is below this share of the retrain oracle's (means over seeds) has destroyed the model:
# its D_f and MIA cells then show destruction, not forgetting (a destroyed model "forgets" everything), so the table
# says so under it (a degenerate row is a finding to state, never a silent win)
DESTROYED_SHARE = 0.5


def zero_shot(method: str, setting: str = "standard") -> bool:
    """JiT's ZS column, derived from what a method declares it reads (never typed by hand): zero-shot = reads only the
    forget set. A setting's wrapper adds its own reads. The reference rows are not zero-shot: the retrain oracle
    trains on the retain set; the original model is not an unlearning method (JiT's tables mark BSLN ×)."""
    from ...methods import REGISTRY, STANDARD, WRAPPERS, base

    if method == "original":
        return False
    if method == "retrain":
        reads = frozenset({"retain"})
    else:
        if method not in REGISTRY:
            raise KeyError(f"method {method!r} is not registered (unlearnbench/methods/)")
        reads = frozenset(REGISTRY[method].reads)
        if setting != STANDARD:
            reads |= WRAPPERS[setting].own_reads
    helper = getattr(base, "zero_shot", None)  # the methods' own definition, where methods/base.py has one
    if helper is not None:
        return bool(helper(SimpleNamespace(reads=reads)))
    return reads <= {"forget"}


def zero_shot_map(plan) -> dict[str, bool]:
    """{"setting/method": ZS} for every configured run and the two reference rows (a rule parameter)."""
    out = {"standard/retrain": zero_shot("retrain"), "standard/original": zero_shot("original")}
    for spec in plan.runs.values():
        out[f"{spec.setting}/{spec.method}"] = zero_shot(spec.method, spec.setting)
    return out


def method_rows(pairs) -> list[tuple[str, str]]:
    """(setting, method) pairs in JiT's row order: methods by METHOD_ORDER, then the others by name; within a method,
    standard first, then the wrappers (SETTING_ORDER, then by name)."""
    pairs = list(dict.fromkeys(pairs))

    def key(pair):
        setting, method = pair
        m = (0, METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (1, 0, method)
        s = (SETTING_ORDER.index(setting), "") if setting in SETTING_ORDER else (len(SETTING_ORDER), setting)
        return m, s
    return sorted(pairs, key=key)


def method_label(setting: str, method: str, long: bool = False, tex: bool = True) -> str:
    """A row's name: the paper's abbreviation, else the registry name (LaTeX-escaped for tables; `tex=False` for
    figures, where matplotlib would print the escapes)."""
    escape = _tex if tex else str
    names = LONG_NAMES if long else SHORT_NAMES
    name = names.get(method) or OTHER_NAMES.get(method) or escape(method)
    return name if setting == "standard" else f"{name} ({escape(setting)})"


# ---------------------------------------------------------------------------------------------------- cells

def _tex(text) -> str:
    return str(text).replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&") \
        .replace("#", "\\#")


def _decimals(value: float) -> int:
    value = abs(value)
    return 0 if value >= 100 else 1 if value >= 10 else 2 if value >= 1 else 3


def cell(row, kind: str) -> str:
    """One table cell from a summary row (mean, std): percentages with 1 decimal (the paper's precision), runtimes
    in seconds with about three significant digits; "--" where there is no value."""
    if row is None or not np.isfinite(row["mean"]):
        return "--"
    scale, decimals = (100.0, 1) if kind != "runtime" else (1.0, _decimals(row["mean"]))
    mean = row["mean"] * scale
    if not np.isfinite(row["std"]):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} $\\pm$ {row['std'] * scale:.{decimals}f}"


def _cells(summary) -> dict:
    """(dataset, scenario, setting, method, metric) -> {"mean", "std"}."""
    keys = summary[["dataset", "scenario", "setting", "method", "metric"]].itertuples(index=False, name=None)
    return {k: {"mean": float(m), "std": float(s)} for k, m, s in zip(keys, summary["mean"], summary["std"])}


def _metric_cell(cells, key, column: str, evaluation: str) -> str:
    dataset, scenario, setting, method = key
    if column == "runtime":
        if method == "original":
            return "--"  # no method runs (the paper's BSLN runtime is its metric computation)
        return cell(cells.get((dataset, scenario, setting, method, RUNTIME)), "runtime")
    return cell(cells.get((dataset, scenario, setting, method, COLUMNS[evaluation][column])), column)


def _zs(zero_shot: dict, setting: str, method: str) -> str:
    value = zero_shot.get(f"{setting}/{method}")
    if value is None:
        raise KeyError(f"no ZS entry for {setting}/{method}: zero_shot must come from jit_report.zero_shot_map")
    return CHECK if value else CROSS


def _read_definitions(paths) -> list[dict]:
    out = []
    for path in paths or []:
        with open(path) as f:
            out.append(json.load(f))
    return out


# ---------------------------------------------------------------------------------------------------- tables

def jit_table(*, summary: str, definitions: list[str], table: str, scenario: str, evaluation: str, labels: dict,
              zero_shot: dict, runs: str | None = None, seed_notes: list | tuple = ()) -> str:
    """Rule jit_table: JiT's Tables 2-6 layout for one scenario. Rows: methods in the paper's order (BSLN = the
    original model, RTRN = the retrain oracle); a column group per dataset running the scenario (its `label`),
    holding D_r acc., D_f acc., MIA and runtime; ZS last. `definitions`: the scenario's request JSONs (one per dataset;
    their definitions go into the header comment). With `runs` (runs.csv), notes under the table say which rows
    did not act (every prediction-derived metric equal to BSLN's on every seed), and knobs that were tuned or
    differ between a row's cells (unlearnbench.artifacts.knobnotes, as under the UIB table). `seed_notes`: notes on a seed
    count capped at the run's (config.Plan.seed_notes)."""
    import pandas as pd

    if evaluation not in COLUMNS:
        raise ValueError(f"evaluation must be one of {sorted(COLUMNS)}, got {evaluation!r}")
    frame = pd.read_csv(summary)
    frame = frame[frame.scenario == scenario]
    if frame.empty:
        raise ValueError(f"{summary}: no rows for scenario {scenario!r}")
    cells = _cells(frame)
    datasets = list(dict.fromkeys(frame.dataset))
    rows = method_rows(frame[["setting", "method"]].itertuples(index=False, name=None))
    columns = ["d_r", "d_f", "mia", "runtime"]
    n = len(columns)
    lines = [f"% Generated by unlearnbench (rule jit_table): JiT (Foster et al., TMLR 2025) Tables 2-6 layout, "
             f"scenario {scenario}.",
             f"% {DEFINITIONS[evaluation]};",
             "% MIA = LR-entropy attack (retain training vs test images), share of the forget set called members; "
             "ZS = reads only the forget set;",
             "% runtime = the method alone in seconds (RTRN: its training; the reference's runtime also includes "
             "metric computation). Mean $\\pm$ std over seeds.",
             "% Needs \\usepackage{booktabs, amssymb}."]
    for d in _read_definitions(definitions):
        lines.append(f"% request ({d.get('scenario', scenario)}): {d.get('definition', '')}")
    lines += [
        "\\begin{tabular}{l" + "r" * (n * len(datasets)) + "c}",
        "\\toprule",
        " & " + " & ".join(f"\\multicolumn{{{n}}}{{c}}{{{_tex(labels.get(d, d))}}}" for d in datasets) + " & \\\\",
        "".join(f"\\cmidrule(lr){{{2 + i * n}-{1 + (i + 1) * n}}}" for i in range(len(datasets))),
        "Method & " + " & ".join(HEADERS[c] for _ in datasets for c in columns) + " & ZS \\\\",
        "\\midrule",
    ]
    for setting, method in rows:
        values = [_metric_cell(cells, (d, scenario, setting, method), c, evaluation) for d in datasets for c in columns]
        lines.append(" & ".join([method_label(setting, method)] + values + [_zs(zero_shot, setting, method)]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    untestable = untestable_notes(cells, datasets, scenario, evaluation, labels) + \
        destroyed_notes(cells, datasets, scenario, evaluation, labels, rows)
    for note in untestable:
        print(f"warning: {table}: {note}", flush=True)
    if runs is None:
        from ..knobnotes import latex_notes

        lines += latex_notes(untestable)
    if runs is not None:
        from ..knobnotes import knob_notes, latex_notes
        from ..uib.tables import SETTING_NAMES

        lines += latex_notes(untestable + list(seed_notes) + knob_notes(runs, labels=labels, scenarios={scenario: scenario},
                                                           method_names={**OTHER_NAMES, **SHORT_NAMES},
                                                           setting_names=SETTING_NAMES))
    lines.append("")
    text = "\n".join(lines)
    with atomic_path(table) as tmp:
        tmp.write_text(text)
    return text


def untestable_notes(cells: dict, datasets, scenario: str, evaluation: str, labels: dict) -> list[str]:
    """A note per dataset whose retrain oracle's D_f acc. is within UNTESTABLE_GAP of the original's (means over
    seeds): there the D_f column cannot separate a method that forgets from one that does nothing."""
    metric = COLUMNS[evaluation]["d_f"]
    notes = []
    for d in datasets:
        oracle = cells.get((d, scenario, "standard", "retrain", metric))
        original = cells.get((d, scenario, "standard", "original", metric))
        if oracle is None or original is None or not (np.isfinite(oracle["mean"]) and np.isfinite(original["mean"])):
            continue
        if abs(oracle["mean"] - original["mean"]) <= UNTESTABLE_GAP:
            notes.append(f"Untestable on {_tex(labels.get(d, d))}: RTRN's $\\mathcal{{D}}_f$ acc. "
                         f"({100 * oracle['mean']:.1f}) is within "
                         f"{100 * UNTESTABLE_GAP:.0f} point of BSLN's ({100 * original['mean']:.1f}), so the retrain "
                         f"oracle forgets no more than the original here and this column cannot tell forgetting from "
                         f"doing nothing; read the MIA column and the population stage instead.")
    return notes


def destroyed_notes(cells: dict, datasets, scenario: str, evaluation: str, labels: dict, rows) -> list[str]:
    """A note per (dataset, method row) whose D_r acc. is below DESTROYED_SHARE of the retrain oracle's."""
    metric = COLUMNS[evaluation]["d_r"]
    notes = []
    for d in datasets:
        oracle = cells.get((d, scenario, "standard", "retrain", metric))
        if oracle is None or not np.isfinite(oracle["mean"]) or oracle["mean"] <= 0:
            continue
        for setting, method in rows:
            if method in ("original", "retrain"):
                continue
            row = cells.get((d, scenario, setting, method, metric))
            if row is None or not np.isfinite(row["mean"]) or row["mean"] >= DESTROYED_SHARE * oracle["mean"]:
                continue
            notes.append(f"{method_label(setting, method)} on {_tex(labels.get(d, d))}: $\\mathcal{{D}}_r$ acc. "
                         f"{100 * row['mean']:.1f}, below half of RTRN's ({100 * oracle['mean']:.1f}): the model no "
                         f"longer does the task, so its $\\mathcal{{D}}_f$ and MIA cells show destruction, not "
                         f"forgetting.")
    return notes


def _natural(text: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(text))]


def class_label(definition: dict, scenario: str) -> str:
    """A breakdown row's forget class: the request's class name (full class, worst case: the class; sub-class: the
    fine class), else the scenario's name."""
    for key in ("fine_class_name", "forget_class_name"):
        if definition.get(key) is not None:
            return str(definition[key])
    return scenario


def jit_breakdown(*, summary: str, definitions: list[str], table: str, dataset: str, label: str, scenarios: list[str],
                  evaluation: dict, zero_shot: dict) -> str:
    """Rule jit_breakdown: JiT's Tables 7-11 layout for one dataset and scenario type: rows method × forget class
    (methods in the paper's order, classes sorted by name as the appendix lists them), columns Method, Forget Class,
    D_r, D_f, MIA, Method Runtime (s), ZS. `definitions[i]` is scenario `scenarios[i]`'s request JSON."""
    import pandas as pd

    if len(definitions) != len(scenarios):
        raise ValueError("one request definition per scenario")
    frame = pd.read_csv(summary)
    frame = frame[(frame.dataset == dataset) & frame.scenario.isin(scenarios)]
    if frame.empty:
        raise ValueError(f"{summary}: no rows for dataset {dataset!r} and scenarios {scenarios}")
    cells = _cells(frame)
    names = {s: class_label(d, s) for s, d in zip(scenarios, _read_definitions(definitions))}
    if len(set(names.values())) < len(names):  # the same class twice (e.g. two worst-case sizes): keep them apart
        names = {s: f"{n} ({s})" for s, n in names.items()}
    order = sorted(scenarios, key=lambda s: _natural(names[s]))
    rows = method_rows(frame[["setting", "method"]].itertuples(index=False, name=None))
    kinds = sorted(set(evaluation[s] for s in scenarios))
    lines = [f"% Generated by unlearnbench (rule jit_breakdown): JiT (Foster et al., TMLR 2025) Tables 7-11 layout, "
             f"dataset {dataset}, scenarios {', '.join(order)}.",
             *[f"% {DEFINITIONS[k]};" for k in kinds],
             "% MIA = LR-entropy attack; runtime = the method alone in seconds (the reference's includes metric "
             "computation); mean $\\pm$ std over seeds. Needs \\usepackage{booktabs, amssymb}.",
             f"% {_tex(label)}",
             "\\begin{tabular}{llrrrrc}",
             "\\toprule",
             "Method & Forget Class & $\\mathcal{D}_r$ & $\\mathcal{D}_f$ & MIA & Method Runtime (s) & ZS \\\\",
             "\\midrule"]
    for i, (setting, method) in enumerate(rows):
        if i:
            lines.append("\\midrule")
        for s in order:
            key = (dataset, s, setting, method)
            values = [_metric_cell(cells, key, c, evaluation[s]) for c in ("d_r", "d_f", "mia", "runtime")]
            lines.append(" & ".join([method_label(setting, method, long=True), _tex(names[s])] + values
                                    + [_zs(zero_shot, setting, method)]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    text = "\n".join(lines)
    with atomic_path(table) as tmp:
        tmp.write_text(text)
    return text


# ---------------------------------------------------------------------------------------------------- figures

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, pdf: str, png: str) -> None:
    for path, kwargs in ((pdf, {}), (png, {"dpi": 150})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.rsplit(".", 1)[1], bbox_inches="tight", **kwargs)


def entropy_test(per_seed: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Fig. 4's test of one method against Retrain, valid across seeds.

    Per seed s: d_s = median over forget samples of H_method(x) - H_retrain(x) (the same seed's oracle, paired by
    sample). Across seeds: a two-sided Wilcoxon signed-rank test of the d_s against 0 (stats.paired_wilcoxon): the
    seeds are the independent replicates (each has its own baseline, oracle and unlearning run), so this is one test
    per method, not an average of per-seed p-values. With n seeds the smallest two-sided p is 2 / 2^n (n = 5:
    0.0625); the note says so when n < 6. Returns n, the median of the d_s, p, and scipy's / our note."""
    from ...evaluation.stats import paired_wilcoxon

    seeds = sorted(per_seed)
    medians = np.array([np.median(per_seed[s][0] - per_seed[s][1]) for s in seeds])
    res = paired_wilcoxon(medians, np.zeros_like(medians))
    return {"n_seeds": len(seeds), "median_of_seed_medians": float(np.median(medians)) if len(seeds) else np.nan,
            "seed_medians": medians.tolist(), "pvalue": res["pvalue"], "note": res.get("note", "")}


def _forget_entropies(runs: list[str], outputs: list[str], scenario: str) -> dict:
    """(dataset, setting, method) -> {seed: per-sample forget-set entropies} of one scenario's runs."""
    from ...core.io import read_bundle
    from ...evaluation.metrics import entropy_of_outputs

    out: dict = {}
    for run_json, npz in zip(runs, outputs):
        arrays, record = read_bundle(npz, json_path=run_json, what="run outputs")
        who = record["identity"]
        if who["scenario"] != scenario:
            continue
        out.setdefault((who["dataset"], who["setting"], who["method"]), {})[int(who["seed"])] = \
            entropy_of_outputs(arrays["forget_logits"])
    return out


def jit_entropy_figure(*, runs: list[str], outputs: list[str], pdf: str, png: str, tests: str, scenario: str,
                       labels: dict) -> "object":
    """Rule jit_entropy_figure, JiT Fig. 4: the forget set's output entropy H(x) per method against the retrain oracle
    (and the original model), one panel per (dataset, method), samples pooled over seeds; each panel's title holds
    its test against Retrain (entropy_test). `tests` gets the tests as CSV (dataset, setting, method, n_seeds,
    median_of_seed_medians, pvalue, note)."""
    import pandas as pd

    entropies = _forget_entropies(runs, outputs, scenario)
    datasets = list(dict.fromkeys(d for d, _, _ in entropies))
    rows_out, panels = [], []
    for dataset in datasets:
        oracle = entropies.get((dataset, "standard", "retrain"), {})
        methods = [k for k in method_rows((s, m) for d, s, m in entropies if d == dataset)
                   if k != ("standard", "retrain")]
        for setting, method in methods:
            per_method = entropies[(dataset, setting, method)]
            paired = {s: (per_method[s], oracle[s]) for s in per_method if s in oracle}
            result = entropy_test(paired)
            rows_out.append({"dataset": dataset, "setting": setting, "method": method,
                             **{k: v for k, v in result.items() if k != "seed_medians"},
                             "seed_medians": " ".join(f"{v:.6g}" for v in result["seed_medians"])})
            panels.append((dataset, setting, method, result))
    table = pd.DataFrame(rows_out, columns=["dataset", "setting", "method", "n_seeds", "median_of_seed_medians",
                                            "pvalue", "note", "seed_medians"])
    with atomic_path(tests) as tmp:
        table.to_csv(tmp, index=False)
    plt = _pyplot()
    n_cols = min(4, max(1, len(panels)))
    n_rows = max(1, -(-len(panels) // n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.7 * n_cols, 2.4 * n_rows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    flat = iter(axes.flat)
    for dataset in datasets:
        pooled = {k: np.concatenate(list(v.values())) for k, v in entropies.items() if k[0] == dataset}
        top = max(float(np.max(v)) for v in pooled.values()) if pooled else 1.0
        bins = np.linspace(0.0, max(top, 1e-6), 31)
        for c, (_, setting, method, result) in enumerate(p for p in panels if p[0] == dataset):
            ax = next(flat)
            ax.set_visible(True)
            if (dataset, "standard", "original") in pooled and method != "original":
                ax.hist(pooled[(dataset, "standard", "original")], bins=bins, histtype="step", color="0.55",
                        linestyle="--", density=True, label="BSLN")
            if (dataset, "standard", "retrain") in pooled:
                ax.hist(pooled[(dataset, "standard", "retrain")], bins=bins, histtype="step", color="k",
                        density=True, label="RTRN")
            ax.hist(pooled[(dataset, setting, method)], bins=bins, alpha=0.55, color="C0", density=True,
                    label=method_label(setting, method, tex=False))
            p = result["pvalue"]
            ax.set_title(f"{labels.get(dataset, dataset)}: {method_label(setting, method, tex=False)}\n"
                         f"Δmed {result['median_of_seed_medians']:+.3g}, p = {p:.3g} (n = {result['n_seeds']})",
                         fontsize=7)
            ax.tick_params(labelsize=6)
            ax.set_xlabel("entropy H(x) (nats)", fontsize=6)
            if c == 0:
                ax.set_ylabel("density", fontsize=6)
                ax.legend(fontsize=5, frameon=False)
    fig.suptitle(f"Forget-set entropy, scenario {scenario} (seeds pooled; test: Wilcoxon over per-seed median "
                 f"differences vs RTRN)", fontsize=8)
    fig.tight_layout()
    _save(fig, pdf, png)
    plt.close(fig)
    return table


def jit_runtime_figure(*, runs: str, pdf: str, png: str, scenarios: list[str], labels: dict) -> "object":
    """Rule jit_runtime_figure, JiT Fig. 5: the median runtime (s) of each method over seeds, one panel per (dataset,
    scenario), every method of the same run side by side (grey points: seeds), each bar annotated with its ratio to
    JiT's median. The original model (no method runs) is left out."""
    import pandas as pd

    frame = pd.read_csv(runs)
    frame = frame[(frame.metric == RUNTIME) & frame.scenario.isin(scenarios) & (frame.method != "original")]
    panels = [(d, s) for s in scenarios for d in dict.fromkeys(frame.dataset) if
              ((frame.dataset == d) & (frame.scenario == s)).any()]
    plt = _pyplot()
    n_cols = min(3, max(1, len(panels)))
    n_rows = max(1, -(-len(panels) // n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 2.6 * n_rows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, (dataset, scenario) in zip(axes.flat, panels):
        ax.set_visible(True)
        sub = frame[(frame.dataset == dataset) & (frame.scenario == scenario)]
        rows = method_rows(sub[["setting", "method"]].itertuples(index=False, name=None))
        medians = [float(sub[(sub.setting == s) & (sub.method == m)].value.median()) for s, m in rows]
        jit = dict(zip(rows, medians)).get(("standard", "jit"))
        y = np.arange(len(rows))
        ax.barh(y, medians, color=["C3" if m == "jit" else "C0" for _, m in rows], alpha=0.8)
        for i, (s, m) in enumerate(rows):
            values = sub[(sub.setting == s) & (sub.method == m)].value.to_numpy()
            ax.plot(values, np.full(len(values), i), "o", color="0.3", markersize=2)
            if jit and jit > 0 and m != "jit":
                ax.annotate(f"×{medians[i] / jit:.3g}", (max(medians[i], float(np.max(values))), i), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=6)
        ax.set_yticks(y, [method_label(s, m, tex=False) for s, m in rows], fontsize=7)
        ax.invert_yaxis()
        positive = [v for v in medians if v > 0]
        if positive and max(positive) / min(positive) > 30:
            ax.set_xscale("log")
        ax.set_xlabel("median runtime (s)", fontsize=7)
        ax.tick_params(axis="x", labelsize=6)
        ax.set_title(f"{labels.get(dataset, dataset)} / {scenario}", fontsize=8)
    fig.suptitle("Median method runtime over seeds (×: ratio to JiT's median; same run)", fontsize=8)
    fig.tight_layout()
    _save(fig, pdf, png)
    plt.close(fig)
    return frame
