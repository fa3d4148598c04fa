"""JiT's artifacts: the per-scenario table's columns (the paper's definitions per scenario type), the ZS column from
declared reads, the per-class breakdown layout, the worst-case-50 scenario (top-n by the baseline's attack, fixed
across seeds), declared superclass maps (coarse labels for any source), the entropy test, the 2-D toy, the configs."""
from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from unlearnbench.artifacts.jit import report as jit_report
from unlearnbench.evaluation import metrics
from unlearnbench.config.plan import parse
from unlearnbench.core.errors import ConfigError
from unlearnbench.datasets.experiment import ExperimentData, build_experiment
from unlearnbench.scenarios import make_request

ROOT = Path(__file__).resolve().parents[1]
SPLIT = {"val_fraction": 0.1, "test_fraction": 0.25}

pytestmark = pytest.mark.timeout(300)


# ---------------------------------------------------------------------------------------------- tables

def _summary(tmp_path, scenario: str, values: dict) -> Path:
    """A hand-built summary.csv: values[(method, metric)] = (mean, std), dataset d, standard setting."""
    rows = [{"dataset": "d", "scenario": scenario, "setting": "standard", "method": m, "metric": k,
             "n": 3, "mean": mean, "std": std} for (m, k), (mean, std) in values.items()]
    path = tmp_path / "summary.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _rows(text: str) -> dict[str, list[str]]:
    out = {}
    for line in text.splitlines():
        if line.startswith(("%", "\\")) or " & " not in line:
            continue
        cells = [c.strip() for c in line.removesuffix("\\\\").split(" & ")]
        if cells[0] not in ("", "Method"):
            out[cells[0]] = cells[1:]
    return out


# every metric a run has, with values that tell the columns apart
METRICS = {"retain_class_test_acc": 0.11, "forget_class_test_acc": 0.22, "test_acc": 0.33, "forget_acc": 0.44,
           "mia_lr_entropy": 0.55, "mia_efficacy_svc": 0.66, "retain_acc": 0.77, "ut_seconds": 12.5}
ZS = {"standard/original": False, "standard/retrain": False, "standard/jit": True, "standard/scrub": False,
      "standard/finetune": False, "standard/gradient_ascent": True}


@pytest.mark.parametrize("evaluation,d_r,d_f", [("class", "11.0", "22.0"), ("sample", "33.0", "44.0")])
def test_jit_table_columns_follow_the_papers_definitions(tmp_path, evaluation, d_r, d_f):
    values = {(m, k): (v, 0.01) for m in ("original", "retrain", "jit") for k, v in METRICS.items()}
    summary = _summary(tmp_path, "s", values)
    text = jit_report.jit_table(summary=str(summary), definitions=[], table=str(tmp_path / "t.tex"), scenario="s",
                                evaluation=evaluation, labels={"d": "Digits"}, zero_shot=ZS)
    rows = _rows(text)
    assert list(rows) == ["BSLN", "RTRN", "JiT"]
    cells = rows["JiT"]
    assert cells[0] == f"{d_r} $\\pm$ 1.0" and cells[1] == f"{d_f} $\\pm$ 1.0"  # D_r, D_f per scenario type
    assert cells[2] == "55.0 $\\pm$ 1.0"  # MIA: the LR-entropy attack, never the SVC one
    assert cells[3] == "12.5 $\\pm$ 0.0" and rows["BSLN"][3] == "--"  # runtime: the method alone; BSLN runs none
    assert "\\multicolumn{4}{c}{Digits}" in text and (tmp_path / "t.tex").read_text() == text


def test_a_scenario_whose_oracle_forgets_nothing_is_marked_untestable(tmp_path, capsys):
    """The Fashion-MNIST sub-class case: RTRN's D_f acc. equals BSLN's, so D_f cannot tell forgetting from doing
    nothing; the table says so under it (and the job's log), naming the dataset. A real gap gives no note."""
    def table(oracle_d_f):
        values = {(m, k): (v, 0.01) for m in ("original", "retrain", "jit") for k, v in METRICS.items()}
        values[("retrain", "forget_class_test_acc")] = (oracle_d_f, 0.01)
        return jit_report.jit_table(summary=str(_summary(tmp_path, "s", values)), definitions=[],
                                    table=str(tmp_path / "t.tex"), scenario="s", evaluation="class",
                                    labels={"d": "Fashion_MNIST"}, zero_shot=ZS)
    text = table(0.225)  # BSLN 0.22: within a point
    assert "Untestable on Fashion\\_MNIST" in text and "(22.5)" in text and "(22.0)" in text
    assert "Untestable" in capsys.readouterr().out
    assert "Untestable" not in table(0.0)


def test_a_row_that_destroyed_the_model_is_noted(tmp_path):
    """A method whose D_r acc. falls below half of RTRN's (an equal-budget EMMN on digits: 6.6 vs 97.6) "forgets"
    by destruction: the table says so, naming the row and both values; a row above the line gets no note."""
    values = {(m, k): (v, 0.01) for m in ("original", "retrain", "jit", "emmn") for k, v in METRICS.items()}
    values[("retrain", "retain_class_test_acc")] = (0.976, 0.004)
    values[("emmn", "retain_class_test_acc")] = (0.066, 0.078)
    values[("jit", "retain_class_test_acc")] = (0.60, 0.03)
    text = jit_report.jit_table(summary=str(_summary(tmp_path, "s", values)), definitions=[],
                                table=str(tmp_path / "t.tex"), scenario="s", evaluation="class", labels={"d": "Digits"},
                                zero_shot={**ZS, "standard/emmn": True})
    noted = [line for line in text.splitlines() if "destruction" in line]
    assert len(noted) == 1 and noted[0].startswith("EMMN on Digits") and "6.6, below half of RTRN's (97.6)" in noted[0]


def test_jit_table_orders_methods_as_the_paper_and_marks_missing_cells(tmp_path):
    methods = ["jit", "gradient_ascent", "scrub", "finetune", "retrain", "original", "zzz_new"]
    values = {(m, "test_acc"): (0.9, 0.0) for m in methods}
    values[("jit", "forget_acc")] = (0.5, 0.1)
    text = jit_report.jit_table(summary=str(_summary(tmp_path, "r", values)), definitions=[],
                                table=str(tmp_path / "t.tex"), scenario="r", evaluation="sample", labels={},
                                zero_shot={**ZS, "standard/zzz_new": True})
    rows = _rows(text)
    assert list(rows) == ["BSLN", "RTRN", "FNTN", "SCRUB", "JiT", "GA", "zzz\\_new"]
    assert rows["FNTN"][1] == "--" and rows["JiT"][1] == "50.0 $\\pm$ 10.0"


def test_zero_shot_is_derived_from_declared_reads(monkeypatch):
    from unlearnbench.methods import REGISTRY

    assert jit_report.zero_shot("jit") and jit_report.zero_shot("gradient_ascent")
    assert not jit_report.zero_shot("scrub") and not jit_report.zero_shot("finetune")
    assert not jit_report.zero_shot("retrain") and not jit_report.zero_shot("original")
    assert not jit_report.zero_shot("gradient_ascent", "uib") or not REGISTRY  # UIB's wrapper reads retain
    # a method that declares retain gets ×, whatever its name says
    fake = type("Fake", (), {"reads": frozenset({"forget", "retain"})})
    monkeypatch.setitem(REGISTRY, "zs_looking", fake)
    assert not jit_report.zero_shot("zs_looking")
    fake.reads = frozenset({"forget"})
    assert jit_report.zero_shot("zs_looking")


def test_zero_shot_map_covers_every_run_and_the_table_prints_it(tmp_path):
    config = _validated(ROOT / "config" / "jit_digits.yaml")
    zs = jit_report.zero_shot_map(parse(config))
    assert zs["standard/jit"] and zs["standard/gradient_ascent"]
    assert not zs["standard/scrub"] and not zs["standard/finetune"] and not zs["standard/retrain"]
    values = {(m, "test_acc"): (0.9, 0.0) for m in ("retrain", "scrub", "jit")}
    rows = _rows(jit_report.jit_table(summary=str(_summary(tmp_path, "r", values)), definitions=[],
                                      table=str(tmp_path / "t.tex"), scenario="r", evaluation="sample", labels={},
                                      zero_shot=zs))
    assert rows["SCRUB"][-1] == jit_report.CROSS and rows["JiT"][-1] == jit_report.CHECK
    assert rows["RTRN"][-1] == jit_report.CROSS


def test_breakdown_table_layout(tmp_path):
    """Tables 7-11: columns Method, Forget Class, D_r, D_f, MIA, Method Runtime, ZS; rows grouped by method (paper
    order), classes sorted by name within each method."""
    rows = []
    for scenario, base in (("fc_sea", 0.1), ("fc_baby", 0.2), ("fc_rocket", 0.3)):
        for method in ("jit", "original", "retrain"):
            for metric, v in (("retain_class_test_acc", base), ("forget_class_test_acc", base + 0.01),
                              ("mia_lr_entropy", base + 0.02), ("ut_seconds", 1.0), ("test_acc", 0.99)):
                rows.append({"dataset": "d", "scenario": scenario, "setting": "standard", "method": method,
                             "metric": metric, "n": 2, "mean": v, "std": 0.0})
    summary = tmp_path / "summary.csv"
    pd.DataFrame(rows).to_csv(summary, index=False)
    defs = []
    for scenario in ("fc_sea", "fc_baby", "fc_rocket"):
        path = tmp_path / f"{scenario}.json"
        path.write_text(f'{{"scenario": "{scenario}", "forget_class_name": "{scenario[3:]}"}}')
        defs.append(str(path))
    text = jit_report.jit_breakdown(summary=str(summary), definitions=defs, table=str(tmp_path / "b.tex"),
                                    dataset="d", label="D", scenarios=["fc_sea", "fc_baby", "fc_rocket"],
                                    evaluation={s: "class" for s in ("fc_sea", "fc_baby", "fc_rocket")},
                                    zero_shot=ZS)
    header = next(line for line in text.splitlines() if line.startswith("Method &"))
    assert [c.strip() for c in header.removesuffix("\\\\").split(" & ")] == \
        ["Method", "Forget Class", "$\\mathcal{D}_r$", "$\\mathcal{D}_f$", "MIA", "Method Runtime (s)", "ZS"]
    body = [[c.strip() for c in line.removesuffix("\\\\").split(" & ")] for line in text.splitlines()
            if " & " in line and not line.startswith("Method")]
    assert [(r[0], r[1]) for r in body] == [(m, c) for m in ("Baseline", "Retrain", "JiT")
                                            for c in ("baby", "rocket", "sea")]
    baby_jit = body[6]
    assert baby_jit[2:5] == ["20.0 $\\pm$ 0.0", "21.0 $\\pm$ 0.0", "22.0 $\\pm$ 0.0"] and baby_jit[6] == jit_report.CHECK
    assert text.count("\\midrule") == 3  # one rule under the header, one between each method's block


# ---------------------------------------------------------------------------------------------- worst case

def _digits_like(seed=0, n_classes=4, per_class=30, size=4):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    return {"x_train": rng.integers(0, 256, (len(y), size, size), dtype=np.uint8), "y_train": y,
            "x_test": rng.integers(0, 256, (len(y) // 2, size, size), dtype=np.uint8), "y_test": y[::2],
            "manifest": {"class_names": [f"c{c}" for c in range(n_classes)]}}


def _fixed_logits(n: int, n_classes: int, seed: int) -> np.ndarray:
    """Logits whose softmax entropy is distinct per row: one large logit of random size, others 0."""
    rng = np.random.default_rng(seed)
    logits = np.zeros((n, n_classes))
    logits[np.arange(n), rng.integers(0, n_classes, n)] = rng.uniform(0.0, 8.0, n)
    return logits


def test_worst_case_picks_exactly_the_top_n_by_the_attack():
    data = ExperimentData(*build_experiment(_digits_like(), split=SPLIT, colour={"enabled": False}, data_seed=0))
    y = data.labels("train")
    n_train, n_test = len(y), len(data.labels("test"))
    train_logits = _fixed_logits(n_train, data.n_classes, 1)
    train_logits[y != 2] *= 1.5  # members (other classes) more confident than the test images
    reference = {"train": train_logits, "test": _fixed_logits(n_test, data.n_classes, 2)}
    options = {"type": "worst_case", "forget_class": 2, "n": 7}
    req = make_request("wc", data, options, 0, reference=reference)
    # by hand: the attack is a logistic regression on entropy; members are more confident, so its coefficient is
    # negative and the top-n membership probabilities are the n lowest entropies of class 2's training images
    h = metrics.entropy_of_outputs(train_logits)
    candidates = np.flatnonzero(y == 2)
    expected = np.sort(candidates[np.argsort(h[candidates])[:7]])
    assert req.description["attack_coef"] < 0
    assert np.array_equal(req.forget_idx, expected)
    from sklearn.linear_model import LogisticRegression

    x_fit = np.concatenate([h[y != 2], metrics.entropy_of_outputs(reference["test"])]).reshape(-1, 1)
    labels = np.concatenate([np.ones((y != 2).sum()), np.zeros(n_test)])
    proba = LogisticRegression(class_weight="balanced").fit(x_fit, labels).predict_proba(h[candidates, None])[:, 1]
    top = np.sort(candidates[np.argsort(-proba, kind="stable")[:7]])
    assert np.array_equal(req.forget_idx, top)
    # retain: rest (default) keeps the class's other images; sample-level evaluation
    assert req.test_forget_idx is None and len(req.retain_idx) == n_train - 7
    # retain: other_classes keeps only the other classes; class-level evaluation sets
    other = make_request("wc", data, {**options, "retain": "other_classes"}, 0, reference=reference)
    assert np.array_equal(other.forget_idx, req.forget_idx)
    assert (y[other.retain_idx] != 2).all() and len(other.retain_idx) == (y != 2).sum()
    assert np.array_equal(other.test_forget_idx, np.flatnonzero(data.labels("test") == 2))
    # one request for every seed: it depends on the reference model and the data only
    again = make_request("wc", data, options, 0, reference=copy.deepcopy(reference))
    assert np.array_equal(again.forget_idx, req.forget_idx)
    with pytest.raises(ValueError, match="n=99"):
        make_request("wc", data, {**options, "n": 99}, 0, reference=reference)
    with pytest.raises(ValueError, match="reference model"):
        make_request("wc", data, options, 0)


def test_worst_case_request_needs_only_the_reference_seeds_baseline(tmp_path):
    """Seeds 3 and 4 run; the request is ranked by seed 0's baseline (reference_seed), so it is one file for both."""
    config = _validated(ROOT / "config" / "jit_digits.yaml")
    config.update(results=str(tmp_path / "res"), seeds=[3, 4])
    config["datasets"] = {"digits": {**config["datasets"]["digits"], "scenarios": ["worst_case"]}}
    config["scenarios"] = {"worst_case": config["scenarios"]["worst_case"]}
    config["methods"] = {"jit": {"method": "jit"}}
    del config["artifacts"]
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "--dry-run", "--cores", "1",
                             str(tmp_path / "res/digits/worst_case/seed3/jit/run.json"),
                             str(tmp_path / "res/digits/worst_case/seed4/jit/run.json"), "--configfile", str(cfg)],
                            cwd=ROOT, capture_output=True, text=True, timeout=240)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "rule forget_request_from_model" in out
    jobs = out.split("rule forget_request_from_model")[1].split("\n\n")[0]
    assert "baseline/seed0/model.pt" in jobs and "seed3" not in jobs and "seed4" not in jobs
    assert out.count("rule forget_request_from_model") == 1  # one request serves both seeds


# ---------------------------------------------------------------------------------------------- superclasses

DIGIT_MAP = {"loops": [0, 6, 8, 9], "strokes": [1, 4, 7], "curves": [2, 3, 5]}


def test_declared_superclasses_train_on_superclasses_and_keep_fine_labels():
    raw = _digits_like(n_classes=10, per_class=20)
    raw["x_test"], raw["y_test"] = raw["x_test"][:0], raw["y_test"][:0]  # as digits: the test split is carved here
    data = ExperimentData(*build_experiment(raw, split=SPLIT, colour={"enabled": False}, data_seed=0,
                                            labels="coarse", superclasses=DIGIT_MAP))
    assert data.n_classes == 3 and data.manifest["class_names"] == ["loops", "strokes", "curves"]
    assert data.manifest["fine_class_names"][8] == "c8" and data.manifest["superclasses"] == DIGIT_MAP
    coarse_of = {f: i for i, members in enumerate(DIGIT_MAP.values()) for f in members}
    for split in ("train", "val", "test"):
        fine, coarse = data.arrays[f"f_{split}"], data.labels(split)
        assert len(fine) == len(coarse) and np.array_equal(coarse, [coarse_of[f] for f in fine])
    # the images are the raw images of those fine classes (the split keeps the pairs together)
    assert sum(data.manifest["sizes"].values()) == len(raw["y_train"])
    req = make_request("sub_class", data, {"fine_class": 8}, 0)
    assert (data.arrays["f_train"][req.forget_idx] == 8).all() and set(data.labels("train")[req.forget_idx]) == {0}
    assert (data.labels("train")[req.retain_idx] == 0).sum() > 0  # the siblings 0, 6, 9 keep the superclass
    assert set(req.test_forget_set(data)[1].tolist()) == {0}


def test_superclass_map_errors_name_the_key():
    from unlearnbench.config.plan import check_superclasses

    ds = {"source": "digits", "labels": "coarse"}
    with pytest.raises(ConfigError, match=r"datasets\.dg\.labels: .*superclasses"):
        check_superclasses("dg", ds)
    with pytest.raises(ConfigError, match=r"datasets\.dg\.superclasses\.b: fine class 0 is already"):
        check_superclasses("dg", {**ds, "superclasses": {"a": list(range(10)), "b": [0]}})
    with pytest.raises(ConfigError, match=r"datasets\.dg\.superclasses: fine classes \[9\]"):
        check_superclasses("dg", {**ds, "superclasses": {"a": list(range(5)), "b": [5, 6, 7, 8]}})
    with pytest.raises(ConfigError, match=r"datasets\.dg\.superclasses: a superclass map is used only"):
        check_superclasses("dg", {"source": "digits", "superclasses": DIGIT_MAP})


def test_sub_class_of_a_one_class_superclass_is_a_config_error():
    config = _validated(ROOT / "config" / "jit_fashion_mnist.yaml")
    name = next(n for n, ds in config["datasets"].items() if ds.get("labels") == "coarse")
    scenario = next(s for s in config["datasets"][name]["scenarios"]
                    if config["scenarios"][s].get("type", s) == "sub_class")
    config["scenarios"][scenario]["fine_class"] = 8  # Bag: the only fine class of superclass "bags"
    from unlearnbench.config.plan import check_config

    with pytest.raises(ConfigError, match=rf"scenarios\.{scenario}\.fine_class: 8 is the only fine class"):
        check_config(config)


# ---------------------------------------------------------------------------------------------- config

def _validated(path: Path) -> dict:
    from snakemake.utils import validate

    from unlearnbench.config.plan import check_config

    config = yaml.safe_load(path.read_text())
    validate(config, str(ROOT / "config" / "schema.yaml"))
    check_config(config)
    return config


@pytest.mark.parametrize("name, breakdown", [("jit_digits.yaml", True), ("jit_fashion_mnist.yaml", False),
                                            ("paper_jit.yaml", True)])
def test_jit_configs_validate_and_plan_every_artifact(name, breakdown):
    """Fashion-MNIST runs one forget class at CPU scale (a job costs ~30 s there): no per-class breakdown."""
    config = _validated(ROOT / "config" / name)
    plan = parse(config).jit
    assert plan is not None and plan["entropy"] and plan["runtime"] and plan["toy"]
    types = set(plan["types"].values())
    assert {"full_class", "sub_class", "worst_case"} <= types and types & {"random", "random_n"}
    assert ({kind for _, kind, _ in plan["breakdowns"]} >= {"full_class"}) == breakdown


def test_artifacts_jit_errors_name_the_key():
    config = _validated(ROOT / "config" / "jit_digits.yaml")
    from unlearnbench.config.plan import check_config

    bad = copy.deepcopy(config)
    bad["artifacts"]["jit"] = {"scenarios": ["nope"]}
    with pytest.raises(ConfigError, match=r"artifacts\.jit\.scenarios: 'nope'"):
        check_config(bad)
    default = yaml.safe_load((ROOT / "config" / "uib_digits.yaml").read_text())  # bias + random only
    default["artifacts"] = {"jit": {"scenarios": ["bias"]}}
    with pytest.raises(ConfigError, match=r"artifacts\.jit\.scenarios: 'bias' is a bias scenario"):
        check_config(default)
    default["artifacts"] = {"jit": None}  # `jit:` with no value: every default (the random scenario here)
    assert parse(default).jit["scenarios"] == ["random"]
    del default["artifacts"]
    assert parse(default).jit is None


# ---------------------------------------------------------------------------------------------- figures

def test_entropy_test_is_one_wilcoxon_over_per_seed_medians():
    rng = np.random.default_rng(0)
    per_seed = {s: (rng.normal(1.0 + 0.1 * s, 0.1, 40), rng.normal(0.0, 0.1, 40)) for s in range(7)}
    res = jit_report.entropy_test(per_seed)
    medians = [np.median(a - b) for a, b in per_seed.values()]
    assert res["n_seeds"] == 7 and np.allclose(res["seed_medians"], medians)
    assert res["pvalue"] == pytest.approx(2 / 2 ** 7)  # all 7 medians positive: exact two-sided p
    same = jit_report.entropy_test({s: (b, b) for s, (_, b) in per_seed.items()})
    assert same["pvalue"] == 1.0 and same["median_of_seed_medians"] == 0.0


@pytest.mark.slow
def test_toy_figure_runs_in_seconds_and_shows_the_papers_contrast(tmp_path):
    from unlearnbench.artifacts.jit import toy as jit_toy

    t0 = time.process_time()
    res = jit_toy.toy_figure(pdf=str(tmp_path / "t.pdf"), png=str(tmp_path / "t.png"))
    cpu = time.process_time() - t0
    assert cpu < 60, f"the toy took {cpu:.1f} s of CPU"
    assert (tmp_path / "t.pdf").stat().st_size > 0 and (tmp_path / "t.png").stat().st_size > 0
    low, high = res["points"]["low"], res["points"]["high"]
    assert res["train_accuracy"] == 1.0 and low["gradient_norm"] < 1.0 < high["gradient_norm"]
    # retraining without the low-gradient point changes (almost) nothing; without the high-gradient one, the point
    assert low["agreement_with_retrain"]["original"][0] > 0.97 and low["p_label"]["retrain"][0] > 0.5
    assert high["p_label"]["retrain"][0] < 0.5 < high["p_label"]["original"][0]
    # JiT (the registered method) leaves the low-gradient point's model close to retrain in every draw; mislabel not
    assert min(low["agreement_with_retrain"]["jit"]) > 0.9 > low["agreement_with_retrain"]["mislabel"][0]
    assert len(high["p_label"]["jit"]) == len(jit_toy.TOY_DRAWS)
