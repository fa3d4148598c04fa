"""Aggregation, statistics and the UIB table on synthetic run outputs: the entropy test combined over seeds (one
Wilcoxon per method, by hand), no averaged p-values, undefined MIA-Efficacy flagged instead of 0/1 flips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from unlearnbench.evaluation import metrics, stats
from unlearnbench.artifacts.uib import plots, tables
from unlearnbench.artifacts import report
from unlearnbench.core.io import write_bundle
from unlearnbench.core.seeds import derive

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]

N_CLASSES, SEEDS = 4, range(7)


def _logits(rng, labels, sharpness):
    """Logits favouring the true label by `sharpness` (plus noise)."""
    z = rng.normal(0, 1, (len(labels), N_CLASSES))
    z[np.arange(len(labels)), labels] += sharpness
    return z


def _colour_classifier(rng, labels, share_right):
    """Logits of a model that predicts a colour: confidently right on `share_right` of the images (those in their
    class colour), confidently wrong on the rest."""
    z = rng.normal(0, 0.3, (len(labels), N_CLASSES))
    right = rng.random(len(labels)) < share_right
    target = np.where(right, labels, (labels + 1 + rng.integers(0, N_CLASSES - 1, len(labels))) % N_CLASSES)
    z[np.arange(len(labels)), target] += 8
    return z


def _write_runs(root, scenario="random"):
    """retrain, original, `shifted` (forget entropies above retrain's) and `leaky` runs: a colour classifier whose
    retain data look like test data (10% in their class colour, as the old bias scenario's re-coloured retain set)
    while its forget points all carry their class colour."""
    paths = []
    labels = {part: np.arange(n) % N_CLASSES for part, n in (("forget", 120), ("retain", 1000), ("test", 450))}
    for seed in SEEDS:
        for run, sharp in (("retrain", {"forget": 2.0, "retain": 5.0, "test": 2.0}),
                           ("original", {"forget": 5.0, "retain": 5.0, "test": 2.0}),
                           ("shifted", {"forget": 1.0, "retain": 5.0, "test": 2.0}),
                           ("leaky", {"forget": 2.0, "retain": 2.0, "test": 2.0})):
            rng = np.random.default_rng([seed, len(run)])
            outputs = {}
            for part, y in labels.items():
                outputs[f"{part}_logits"] = _logits(rng, y, sharp[part]).astype(np.float32)
                outputs[f"{part}_labels"] = y
            if run == "leaky":
                for part, share in (("forget", 1.0), ("retain", 0.1), ("test", 0.1)):
                    outputs[f"{part}_logits"] = _colour_classifier(rng, labels[part], share).astype(np.float32)
            d = root / scenario / f"seed{seed}" / run
            identity = {"dataset": "d", "scenario": scenario, "seed": seed, "run": run, "method": run,
                        "setting": "standard"}
            info = {"ut_seconds": 1.0, "ut_device_seconds": 1.0, "param_change": 0.0, "ut_minutes": 1 / 60,
                    "n_classes": N_CLASSES}
            write_bundle(d / "outputs.npz", outputs, {"identity": identity, "info": info, "trace": []},
                         json_path=d / "run.json")
            paths.append((d / "run.json", d / "outputs.npz"))
    return paths


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    paths = _write_runs(root)
    out = root / "summary"
    report.aggregate(runs=[str(r) for r, _ in paths], outputs=[str(o) for _, o in paths], csv=str(out / "runs.csv"),
                     parquet=str(out / "runs.parquet"), traces=str(out / "traces.csv"))
    report.write_statistics(runs=str(out / "runs.csv"), summary=str(out / "summary.csv"),
                            stats=str(out / "stats.csv"), text=str(out / "summary.md"))
    return root, out


def test_entropy_test_is_one_wilcoxon_over_seeds_of_per_seed_medians(reported):
    """JiT §4.2 compares one model's forget entropies with Retrain's; over seeds the test is a signed-rank test of
    each seed's median paired difference (independent models), here recomputed by hand from the outputs."""
    root, out = reported
    medians = []
    for seed in SEEDS:
        run = np.load(root / "random" / f"seed{seed}" / "shifted" / "outputs.npz")
        ref = np.load(root / "random" / f"seed{seed}" / "retrain" / "outputs.npz")
        h = metrics.entropy_of_outputs(run["forget_logits"]) - metrics.entropy_of_outputs(ref["forget_logits"])
        medians.append(np.median(h))
    expected = wilcoxon(np.round(medians, 10), alternative="two-sided")
    comparisons = pd.read_csv(out / "stats.csv")
    row = comparisons[(comparisons.metric == "forget_entropy_median_diff") & (comparisons.method == "shifted")
                      & (comparisons.family == "vs_retrain")]
    assert len(row) == 1  # one test per (dataset, scenario, method), not one per seed
    row = row.iloc[0]
    assert row.n == len(SEEDS) and row.reference == "standard/retrain"
    assert row.pvalue == pytest.approx(expected.pvalue) and row.statistic == pytest.approx(expected.statistic)
    assert row.mean_diff == pytest.approx(np.mean(medians))
    assert all(m > 0 for m in medians) and row.pvalue < 0.05  # flatter forget outputs than Retrain, every seed
    runs = pd.read_csv(out / "runs.csv")
    retrain = runs[(runs.method == "retrain") & (runs.metric == "forget_entropy_median_diff")]
    assert (retrain.value == 0).all() and len(retrain) == len(SEEDS)  # the reference against itself


def test_no_summary_averages_a_p_value(reported):
    _, out = reported
    summary = pd.read_csv(out / "summary.csv")
    assert not [m for m in summary.metric.unique() if stats.is_pvalue_metric(m)]
    assert "entropy_wilcoxon_p" not in set(pd.read_csv(out / "runs.csv").metric)
    long = pd.read_csv(out / "runs.csv").drop(columns=["run"])
    for name in ("entropy_wilcoxon_p", "ks_pvalue", "margin_p_value"):
        one_per_seed = long[long.metric == "rip"].assign(metric=name)
        bad = pd.concat([long, one_per_seed])
        with pytest.raises(ValueError, match="p-value"):
            stats.summary_table(bad, seed=0)


def test_undefined_mia_is_flagged_not_a_zero_one_flip(reported, tmp_path):
    """`leaky`'s retain confidences are distributed like its test confidences: the SVC has nothing to learn, and its
    verdict on the forget set (all members or none) is a tie-break that flips with the shadow sample. Such runs get
    the flag and no value (where the draws show the flip), and the table says so; runs with a signal keep theirs."""
    root, out = reported
    runs = pd.read_csv(out / "runs.csv")
    flag = runs[runs.metric == "mia_efficacy_svc_undefined"].set_index(["method", "seed"]).value
    assert (flag.loc["retrain"] == 0).all() and (flag.loc["original"] == 0).all() and (flag.loc["shifted"] == 0).all()
    flagged = sorted(flag.loc["leaky"][flag.loc["leaky"] == 1].index)
    assert len(flagged) >= 5, flagged
    # without the flag these would be 0/1 flips: the attack's raw verdicts on the flagged runs
    raw = []
    for seed in SEEDS:
        z = np.load(root / "random" / f"seed{seed}" / "leaky" / "outputs.npz")
        raw.append(metrics.mia_efficacy_svc(z["retain_logits"], z["retain_labels"], z["test_logits"], z["test_labels"],
                                            z["forget_logits"], z["forget_labels"], seed=derive(seed, "attack")))
    assert set(np.round(raw, 2)) <= {0.0, 1.0} and len(set(raw)) == 2  # all-or-nothing verdicts, both ways
    mia = runs[runs.metric == "mia_efficacy_svc"].set_index(["method", "seed"]).value
    assert not set(flagged) & set(mia.loc["leaky"].index) and len(mia.loc["retrain"]) == len(SEEDS)
    text = tables.uib_table(summary=str(out / "summary.csv"), table=str(tmp_path / "t.tex"))
    leaky = next(line for line in text.splitlines() if line.split(" & ")[2:3] == ["leaky"])
    assert f"MIA-Efficacy undefined in {len(flagged)}/{len(SEEDS)} seeds" in leaky and "Note" in text


def test_table_refuses_two_datasets_sharing_a_label_and_scenario(reported, tmp_path):
    _, out = reported
    summary = pd.read_csv(out / "summary.csv")
    both = pd.concat([summary, summary.assign(dataset="e")])
    both.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(ValueError, match="share the table label"):
        tables.uib_table(summary=str(tmp_path / "s.csv"), table=str(tmp_path / "t.tex"), labels={"d": "X", "e": "X"})
    assert not (tmp_path / "t.tex").exists()
    tables.uib_table(summary=str(tmp_path / "s.csv"), table=str(tmp_path / "t.tex"), labels={"d": "X", "e": "Y"})


def test_a_row_that_makes_predictions_follow_the_colour_more_is_noted(tmp_path):
    """ot_repair on the bias setup raised Cramér's V above the original model's (0.50 -> 0.79, docs/methods.md):
    such a row gets a note naming both values; a row that lowers it (or raises it by no more than BIAS_RISE) none."""
    rows = []
    for method, v in (("original", 0.50), ("ot_repair", 0.79), ("finetune", 0.41), ("influence", 0.53)):
        for metric, value in (("bias_cramers_v", v), ("test_f1", 0.5), ("rip", 1.0), ("mia_efficacy_svc", 0.1),
                              ("ut_minutes", 0.01)):
            rows.append({"dataset": "d", "scenario": "bias", "setting": "standard", "method": method, "metric": metric,
                         "n": 3, "mean": value, "std": 0.01})
    pd.DataFrame(rows).to_csv(tmp_path / "s.csv", index=False)
    text = tables.uib_table(summary=str(tmp_path / "s.csv"), table=str(tmp_path / "t.tex"))
    noted = [line for line in text.splitlines() if "follow" in line]
    assert len(noted) == 1 and "ot\\_repair" in noted[0]
    assert "0.79, Original 0.50" in noted[0]


def _plan(path):
    import yaml
    from snakemake.utils import validate

    from unlearnbench.config.plan import parse

    config = yaml.safe_load(path.read_text())
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config, parse(config)


def test_bias_strength_figure_groups_datasets_that_differ_only_in_s():
    from unlearnbench.config.plan import bias_strength_groups, is_bias_strength_sweep

    config, plan = _plan(ROOT / "config" / "uib_bias_strength.yaml")
    groups = bias_strength_groups(config, plan)
    assert {g["group"] for g in groups.values()} == {"digits"}
    assert sorted(g["bias_strength"] for g in groups.values()) == [0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0]
    assert is_bias_strength_sweep(groups)
    default, plan = _plan(ROOT / "config.yaml")  # one bias dataset: no figure
    assert not is_bias_strength_sweep(bias_strength_groups(default, plan))
    # a dataset that differs in anything else (here the model) is its own group, not a point on the same line
    config["datasets"]["digits_c_s100"]["model"] = {"arch": "small_cnn", "width": 8}
    config, plan = _plan_from(config)
    groups = bias_strength_groups(config, plan)
    assert groups["digits_c_s100"]["group"] == "digits #2" and groups["digits_c_s050"]["group"] == "digits #1"


def _plan_from(config):
    from snakemake.utils import validate

    from unlearnbench.config.plan import parse

    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config, parse(config)


def test_bias_strength_figure_is_drawn_from_the_summary(reported, tmp_path):
    _, out = reported
    summary = pd.read_csv(out / "summary.csv")
    rows = [summary.assign(dataset=f"d{i}", scenario="bias", mean=summary["mean"] * s)
            for i, s in enumerate((0.5, 0.9, 1.0))]
    pd.concat(rows).to_csv(tmp_path / "s.csv", index=False)
    strengths = {f"d{i}": {"scenario": "bias", "bias_strength": s, "group": "digits"}
                 for i, s in enumerate((0.5, 0.9, 1.0))}
    with pytest.raises(ValueError, match="no test_f1"):  # the named datasets are not in this summary
        plots.bias_strength_figure(summary=str(out / "summary.csv"), pdf=str(tmp_path / "f.pdf"),
                                   png=str(tmp_path / "f.png"), strengths=strengths)
    plots.bias_strength_figure(summary=str(tmp_path / "s.csv"), pdf=str(tmp_path / "f.pdf"),
                               png=str(tmp_path / "f.png"), strengths=strengths)  # ... but test F1 is drawn
    assert (tmp_path / "f.pdf").stat().st_size > 0 and (tmp_path / "f.png").stat().st_size > 0
