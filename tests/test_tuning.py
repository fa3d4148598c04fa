"""Sweeps, the tune stage and its protocol (docs/tuning.md): sweep expansion and validation, per-scenario knobs in
the job and in the table notes, tuning requests distinct from the evaluated ones, the seeded and resumable search,
the selection on a tiny grid read by the evaluation job, and the guard that keeps the tune stage off the test
split."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from unlearnbench.tuning import search
from unlearnbench.config import sweeps
from unlearnbench.config.plan import parse
from unlearnbench.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# a UIB-shaped config with every kind of run (settings, JiT, GA) on the bias and random scenarios
DEFAULT = yaml.safe_load((ROOT / "config" / "uib_digits.yaml").read_text())

pytestmark = pytest.mark.timeout(600)


def _validated(config: dict) -> dict:
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config


# ---------------------------------------------------------------------------------------------- sweeps in config

def test_a_grid_sweep_expands_into_one_readable_run_per_point():
    config = _validated(DEFAULT)
    config["methods"]["jit"]["sweep"] = {"sigma": [0.01, 0.5], "lr": [0.0001, 0.0003, 0.001]}
    config["methods"]["uib_scrub"]["sweep_list"] = [{"setting_knobs": {"beta": 0.1, "tau": 1.0}},
                                                   {"lr": 0.01, "setting_knobs": {"batch_size": 32}}]
    plan = parse(config)
    points = [r for r in plan.runs if r.startswith("jit~")]
    assert len(points) == 6 and plan.runs["jit"].points == tuple(points)
    assert "jit~lr=0.0003~sigma=0.01" in points  # keys sorted, shortest float repr
    job = plan.job("jit~lr=0.0003~sigma=0.01", "digits", "random")
    assert job["knobs"]["lr"] == 0.0003 and job["knobs"]["sigma"] == 0.01
    assert job["knobs"]["n_perturbations"] == 25  # the run's other knobs stay
    assert job["sweep_of"] == "jit" and job["knobs_from"] == "sweep" and job["point"] == {"lr": 0.0003, "sigma": 0.01}
    # setting knobs by their bare name, unless the method has a knob of that name (scrub has batch_size)
    assert set(plan.runs["uib_scrub"].points) == {"uib_scrub~beta=0.1~tau=1.0",
                                                  "uib_scrub~lr=0.01~setting.batch_size=32"}
    assert plan.job("uib_scrub~beta=0.1~tau=1.0", "digits_c", "bias")["setting_knobs"]["beta"] == 0.1
    # a point is a run of its own: the (setting, method) uniqueness check does not count it
    assert plan.job("jit", "digits", "random")["knobs"]["sigma"] == 0.5


@pytest.mark.parametrize("mutate,key", [
    (lambda m: m["jit"].update(sweep={"sigma": [0.1, -1.0]}), r"methods\.jit\.sweep\.sigma: must be > 0"),
    (lambda m: m["jit"].update(sweep={"sigma": [0.1, 0.1]}), r"methods\.jit\.sweep\.sigma: value 0\.1 is listed twice"),
    (lambda m: m["jit"].update(sweep={"nope": [1]}), r"methods\.jit\.sweep\.nope: unknown knob"),
    (lambda m: m["jit"].update(sweep={"sigma": []}), r"methods\.jit\.sweep\.sigma: expected a non-empty list"),
    (lambda m: m["jit"].update(sweep_list=[{"sigma": 0.1}, {"epochs": 0}]),
     r"methods\.jit\.sweep_list\[1\]\.epochs: must be >= 1"),
    (lambda m: m["uib_scrub"].update(sweep={"setting_knobs": {"beta": [-0.1]}}),
     r"methods\.uib_scrub\.sweep\.setting_knobs\.beta: must be >= 0"),
    (lambda m: m["finetune"].update(sweep={"setting_knobs": {"beta": [0.1]}}),
     r"methods\.finetune\.sweep\.setting_knobs\.beta: the standard setting has no knobs"),
    (lambda m: m["jit"].update(sweep={"sigma": [0.1, 0.5]}, sweep_list=[{"sigma": 0.1}]),
     r"methods\.jit\.sweep_list\[0\]: point \{'sigma': 0\.1\} is listed twice \(also at methods\.jit\.sweep\)"),
])
def test_a_bad_sweep_names_its_key(mutate, key):
    config = _validated(DEFAULT)
    mutate(config["methods"])
    with pytest.raises(ConfigError, match=key):
        parse(config)


@pytest.mark.parametrize("tune,key", [
    ({"space": {"sigma": {"low": 0.0, "high": 1.0, "log": True}}}, r"methods\.jit\.tune\.space\.sigma\.low: a log range"),
    ({"space": {"sigma": {"low": 1.0, "high": 0.5}}}, r"methods\.jit\.tune\.space\.sigma: low \(1\.0\) must be below"),
    ({"space": {"sigma": {"low": -1.0, "high": 0.5}}}, r"methods\.jit\.tune\.space\.sigma: must be > 0"),
    ({"space": {"epochs": {"low": 1.5, "high": 3}}}, r"methods\.jit\.tune\.space\.epochs\.low: expected a finite int"),
    ({"space": {"nope": [1, 2]}}, r"methods\.jit\.tune\.space\.nope: not a knob of this run"),
    ({"search": "grid", "space": {"sigma": {"low": 0.1, "high": 1.0}}},
     r"methods\.jit\.tune\.space\.sigma: search: grid needs a list"),
    ({"space": {"sigma": [0.1]}, "trials": 5}, r"methods\.jit\.tune\.trials: applies to search: tpe only"),
    ({"space": {"sigma": [0.1]}, "objective": {"test_acc": 1.0}}, r"methods\.jit\.tune\.objective\.test_acc: unknown"),
    ({"space": {"sigma": [0.1]}, "objective": {"forget_acc": 0.0}}, r"methods\.jit\.tune\.objective: at least one"),
    ({"space": {"sigma": [0.1]}, "seeds": []}, r"methods\.jit\.tune\.seeds"),
    ({}, r"methods\.jit\.tune\.space: give the knob space"),
    ({"space": {"sigma": [0.1]}, "budget": 3}, r"methods\.jit\.tune\.budget: unknown key"),
])
def test_a_bad_tune_block_names_its_key(tune, key):
    config = _validated(DEFAULT)
    config["methods"]["jit"]["tune"] = tune
    with pytest.raises(ConfigError, match=key):
        parse(config)


def test_the_knob_that_chooses_the_starting_model_cannot_be_tuned():
    config = _validated(DEFAULT)
    config["methods"]["sparsity_finetune"]["tune"] = {"space": {"setting_knobs": {"sparsity": [0.5, 0.9]}}}
    with pytest.raises(ConfigError, match=r"methods\.sparsity_finetune\.tune\.space\.setting_knobs\.sparsity: "
                                          r"chooses the run's starting model"):
        parse(config)


def test_a_tune_block_parses_into_a_search_with_defaults():
    config = _validated(DEFAULT)
    config["methods"]["jit"]["sweep"] = {"sigma": [0.01, 0.5]}
    config["methods"]["jit"]["tune"] = {}  # grid over the sweep
    config["methods"]["gradient_ascent"]["tune"] = {"space": {"lr": {"low": 1e-4, "high": 0.1, "log": True},
                                                              "epochs": [1, 2]}, "trials": 7}
    config["scenarios"]["random"]["tune_request"] = {"fraction": 0.05}
    plan = parse(config)
    jit = plan.runs["jit"].tune
    assert jit.search == "grid" and jit.points == ({"sigma": 0.01}, {"sigma": 0.5}) and jit.seeds == (0,)
    assert jit.objective == sweeps.DEFAULT_OBJECTIVE
    ga = plan.runs["gradient_ascent"].tune
    assert ga.search == "tpe" and ga.trials == 7 and ga.startup_trials == 7
    assert [d.key for d in ga.dimensions] == ["epochs", "lr"] and ga.dimensions[1].log
    assert ("digits", "random", "jit") in plan.tune_jobs() and ("digits_c", "bias", "gradient_ascent") in plan.tune_jobs()
    assert plan.tuning["random"] == {"request": {"fraction": 0.05}, "tuned_by": None}


def _class_config() -> dict:
    config = _validated(DEFAULT)
    config["scenarios"] = {"full_class": {"forget_class": 3}, "full_class_5": {"type": "full_class", "forget_class": 5}}
    config["datasets"] = {"digits": {**config["datasets"]["digits"], "scenarios": ["full_class", "full_class_5"]}}
    config["methods"] = {"jit": {"method": "jit", "tune": {"space": {"sigma": [0.1, 0.5]}}}}
    return config


@pytest.mark.parametrize("mutate,key", [
    (lambda c: c["scenarios"]["full_class"].update(tune_request={"forget_class": 3}),
     r"scenarios\.full_class\.tune_request\.forget_class: the tuning request must forget another class"),
    (lambda c: c["scenarios"]["full_class"].update(tune_request={"nope": 3}),
     r"scenarios\.full_class\.tune_request\.nope: unknown knob"),
    (lambda c: c["scenarios"]["full_class_5"].update(tuned_by="nope"), r"scenarios\.full_class_5\.tuned_by"),
    (lambda c: c["scenarios"]["full_class_5"].update(tuned_by="full_class", tune_request={"forget_class": 1}),
     r"scenarios\.full_class_5\.tune_request"),
])
def test_a_bad_tuning_request_names_its_key(mutate, key):
    config = _class_config()
    mutate(config)
    with pytest.raises(ConfigError, match=key):
        parse(config)


def test_tuned_by_reuses_one_scenarios_search():
    config = _class_config()
    config["scenarios"]["full_class_5"]["tuned_by"] = "full_class"
    plan = parse(config)
    assert plan.tune_jobs() == [("digits", "full_class", "jit")]
    assert plan.tune_scenario("full_class_5") == "full_class"


def test_a_tuned_run_on_a_scenario_without_a_tuning_request_is_a_config_error():
    """worst_case builds no tuning request (it needs a trained model): a tuned run there must name tuned_by, and the
    check stops the run before any job (it once failed only at the tuning_request job)."""
    config = _class_config()
    config["scenarios"]["wc"] = {"type": "worst_case", "forget_class": 3, "n": 20, "reference_seed": 0}
    config["datasets"]["digits"]["scenarios"].append("wc")
    with pytest.raises(ConfigError, match=r"methods\.jit\.tune: scenario 'wc' is 'worst_case', which has no tuning "
                                          r"request of its own; set scenarios\.wc\.tuned_by to a full_class scenario"):
        parse(config)
    config["scenarios"]["wc"]["tuned_by"] = "full_class"
    assert parse(config).tune_scenario("wc") == "full_class"


# ---------------------------------------------------------------------------------------------- per-scenario knobs

def _identity_rows(plan, tuned: dict | None = None) -> pd.DataFrame:
    """runs.csv rows as aggregation writes them, from the plan's jobs (one seed, a few metrics)."""
    from unlearnbench.artifacts.report import knob_columns

    rows = []
    for dataset, scenario in plan.experiments:
        for run in ["original", "retrain", *plan.runs_for(scenario)]:
            if run in ("original", "retrain"):
                who = {"run": run, "method": run, "setting": "standard"}
            elif tuned and run in tuned:
                who = plan.runs[run].job(dataset, scenario, tuned=tuned[run])
            else:
                who = plan.job(run, dataset, scenario)
            ids = {"dataset": dataset, "scenario": scenario, "seed": 0, "run": run, "method": who["method"],
                   "setting": who["setting"]}
            values = {"test_acc": 0.9, "test_f1": 0.9, "forget_acc": 1.0, "retain_acc": 1.0}
            if run not in ("original", "influence"):
                values = {k: v - 0.01 for k, v in values.items()}
            rows += [{**ids, **knob_columns(who), "metric": m, "value": v} for m, v in values.items()]
    return pd.DataFrame(rows)


def test_per_scenario_overrides_reach_the_job_and_the_table_notes(tmp_path):
    from unlearnbench.artifacts.knobnotes import knob_notes
    from unlearnbench.artifacts.uib.tables import METHOD_NAMES, SETTING_NAMES, uib_table

    config = _validated(DEFAULT)
    config["methods"]["jit"]["by_scenario"] = {"random": {"sigma": 0.01}}
    config["methods"]["uib_finetune"]["by_scenario"] = {"bias": {"setting_knobs": {"beta": 0.1}}}
    plan = parse(config)
    assert plan.job("jit", "digits", "random")["knobs"]["sigma"] == 0.01
    assert plan.job("jit", "digits", "random")["overridden"] == ["sigma"]
    runs = _identity_rows(plan)
    labels = {"digits": "Digits", "digits_c": "Digits"}
    scenarios = {"bias": "Patterns and Biases", "random": "Random Data Points"}
    notes = knob_notes(runs, labels=labels, scenarios=scenarios, method_names=METHOD_NAMES, setting_names=SETTING_NAMES)
    assert "JiT: $\\sigma$ = 0.5 (Digits, Patterns and Biases), 0.01 (Digits, Random Data Points)." in notes
    assert "UIB FT: $\\beta$ = 0.1 (Digits, Patterns and Biases), 0.01 (Digits, Random Data Points)." in notes
    assert not any(n.startswith("FT") for n in notes)  # same knobs in every cell: no note
    # influence's prediction metrics equal Original's in this table: stated, not silent
    assert any(n.startswith("IF (Digits, Patterns and Biases): every prediction-derived metric") for n in notes)
    # the notes reach the LaTeX table
    csv = tmp_path / "runs.csv"
    runs.to_csv(csv, index=False)
    summary = tmp_path / "summary.csv"
    pd.DataFrame([{"dataset": "digits", "scenario": "random", "setting": "standard", "method": "jit", "metric": "rip",
                   "n": 1, "mean": 0.1, "std": float("nan")}]).to_csv(summary, index=False)
    tex = uib_table(summary=str(summary), table=str(tmp_path / "t.tex"), runs=str(csv), labels=labels,
                    scenarios=scenarios)
    assert "\\end{tabular}\n\\par\\smallskip{\\footnotesize" in tex
    assert "JiT: $\\sigma$ = 0.5 (Digits, Patterns and Biases), 0.01 (Digits, Random Data Points)." in tex


def test_a_tuned_row_that_acted_at_no_setting_is_marked(tmp_path):
    from unlearnbench.artifacts.knobnotes import knob_notes

    config = _validated(DEFAULT)
    config["methods"]["influence"]["tune"] = {"space": {"scale": [100.0, 1000.0]}}
    plan = parse(config)
    tuned = {"point": {"scale": 1000.0}, "file": "x/chosen.json", "scenario": "random", "chosen_acts": False,
             "n_acting": 0, "n_complete": 2}
    runs = _identity_rows(plan, tuned={"influence": tuned})
    notes = knob_notes(runs, method_names={"influence": "IF"})
    assert "IF (tuned on validation data): scale = 1000 in every cell." in notes
    assert any("IF (digits, random): not acting at any knob setting tried" in n for n in notes)


# ---------------------------------------------------------------------------------------------- tuning requests

def test_tuning_requests_are_distinct_from_the_evaluated_ones(random_setup, bias_setup):
    from unlearnbench.datasets.experiment import ExperimentData
    from unlearnbench.scenarios import ForgetRequest, make_tuning_request

    for setup, options in ((random_setup, {"type": "random", "fraction": 0.1}),
                           (bias_setup, {"type": "bias", "pattern_fraction": 0.1, "oracle": "decorrelated"})):
        data = ExperimentData.load(setup.data, test=False)
        evaluated = ForgetRequest.load(setup.request)
        tuning = make_tuning_request(setup.scenario, data, options, {}, 0, evaluated)
        assert len(np.intersect1d(tuning.forget_idx, evaluated.forget_idx)) == 0
        assert abs(len(tuning.forget_idx) - len(evaluated.forget_idx)) <= 10
        assert tuning.description["tuning"] and tuning.test_forget_idx is None
        again = make_tuning_request(setup.scenario, data, options, {}, 0, evaluated)
        assert np.array_equal(again.forget_idx, tuning.forget_idx)  # seeded
    data = ExperimentData.load(random_setup.data, test=False)
    y = data.labels("train")
    evaluated = ForgetRequest("full_class", np.flatnonzero(y == 9), np.flatnonzero(y != 9), None, {})
    tuning = make_tuning_request("full_class", data, {"type": "full_class", "forget_class": 9}, {}, 0, evaluated)
    assert set(y[tuning.forget_idx]) == {0}  # the next class, cyclically
    named = make_tuning_request("full_class", data, {"type": "full_class", "forget_class": 9}, {"forget_class": 4}, 0,
                                evaluated)
    assert set(y[named.forget_idx]) == {4}


# ---------------------------------------------------------------------------------------------- the test-split guard

def test_an_experiment_loaded_without_its_test_split_refuses_every_way_in(random_setup):
    from unlearnbench.datasets.experiment import ExperimentData, TestSplitAccessError

    data = ExperimentData.load(random_setup.data, test=False)
    assert not any(k.endswith("_test") for k in data.arrays)  # never read from the file
    for access in (lambda: data.images("test"), lambda: data.labels("test"), lambda: data.colours("test"),
                   lambda: data.arrays["x_test"], lambda: data.arrays.get("y_test"), lambda: "y_test" in data.arrays):
        with pytest.raises(TestSplitAccessError, match="without its test split"):
            access()
    assert len(data.images("val")) == len(data.labels("val")) > 0 and data.n_classes == 10


def test_every_tune_stage_job_loads_the_experiment_without_its_test_split(random_setup, tmp_path, monkeypatch):
    """tuning_request and tuning_oracle (and tune, below) open the experiment only through the guarded view."""
    from unlearnbench.steps import training
    from unlearnbench.datasets.experiment import ExperimentData
    from unlearnbench.scenarios import prepare_tuning_request

    calls = []
    load = ExperimentData.load.__func__

    def recording(cls, path, *, test=True):
        calls.append(test)
        return load(cls, path, test=test)

    monkeypatch.setattr(ExperimentData, "load", classmethod(recording))
    request = tmp_path / "tune.npz"
    prepare_tuning_request(experiment=str(random_setup.data), evaluated=str(random_setup.request), request=str(request),
                           definition=str(tmp_path / "tune.json"), scenario="random",
                           options={"type": "random", "fraction": 0.1}, overrides={}, data_seed=0)
    training.train_tuning_oracle(experiment=str(random_setup.data), request=str(request), model=str(tmp_path / "o.pt"),
                                 training={**random_setup.training,
                                           "train": {**random_setup.training["train"], "epochs": 1}},
                                 seed=0, device="cpu", threads=1, log=str(tmp_path / "log"))
    assert calls == [False, False]


@pytest.fixture(scope="module")
def tuning_setup(random_setup, tmp_path_factory):
    """The random scenario's tuning request and its retrain oracle (seed 0), as rules tuning_request/tuning_oracle
    write them."""
    from unlearnbench.steps import training
    from unlearnbench.scenarios import prepare_tuning_request

    root = tmp_path_factory.mktemp("tuning")
    request = root / "tune_random.npz"
    prepare_tuning_request(experiment=str(random_setup.data), evaluated=str(random_setup.request),
                           request=str(request), definition=str(request.with_suffix(".json")), scenario="random",
                           options={"type": "random", "fraction": 0.1}, overrides={}, data_seed=0)
    oracle = root / "oracle.pt"
    training.train_tuning_oracle(experiment=str(random_setup.data), request=str(request), model=str(oracle),
                                 training=random_setup.training, seed=0, device="cpu", threads=1,
                                 log=str(root / "log"))
    return root, request, oracle


def _tune(random_setup, tuning_setup, tmp_path, run_spec: dict, tuning: dict, tag: str):
    from unlearnbench.tuning import tuning as tuning_mod

    root, request, oracle = tuning_setup
    out = tmp_path / tag
    out.mkdir(exist_ok=True)
    return tuning_mod.tune(experiment=str(random_setup.data), request=str(request), starts=[str(random_setup.baseline)],
                           oracles=[str(oracle)], chosen=str(out / "chosen.json"), trials=str(out / "trials.csv"),
                           spec=run_spec, tuning=tuning, identity={"dataset": "digits", "scenario": "random",
                                                                   "run": run_spec["run"]},
                           storage=str(out / "study"), device="cpu", threads=1, log=str(out / "log"))


def _ga_config(points) -> dict:
    config = _validated(DEFAULT)
    config["datasets"] = {"digits": config["datasets"]["digits"]}
    config["scenarios"] = {"random": config["scenarios"]["random"]}
    # batch 32: the digits-scale GA batch (docs/methods.md); the reference default 256 is ~4 steps an epoch here
    config["methods"] = {"gradient_ascent": {"method": "gradient_ascent", "epochs": 1, "batch_size": 32,
                                             "tune": {"space": {"lr": points}}}}
    return config


def test_the_tune_stage_picks_the_objectives_best_point_and_the_evaluation_job_reads_it(random_setup, tuning_setup,
                                                                                        tmp_path):
    from unlearnbench.steps import unlearning

    grid = [1e-9, 0.003, 0.05]
    plan = parse(_ga_config(grid))
    spec = plan.job("gradient_ascent", "digits", "random")
    tuning = plan.runs["gradient_ascent"].tune.as_dict()
    chosen = _tune(random_setup, tuning_setup, tmp_path, spec, tuning, "ga")
    trials = pd.read_csv(tmp_path / "ga" / "trials.csv")
    assert len(trials) == 3 and set(trials["knob:lr"]) == set(grid)
    # the objective by hand: Σ weight · |metric − tuning oracle's metric| over the terms, from the trials' terms
    by_hand = sum(w * trials[f"term:{t}"] for t, w in sweeps.DEFAULT_OBJECTIVE.items() if f"term:{t}" in trials)
    assert np.allclose(by_hand, trials["objective"])
    best = trials.loc[by_hand.idxmin()]
    assert chosen["point"] == {"lr": best["knob:lr"]} and math.isclose(chosen["value"], by_hand.min())
    assert set(chosen["terms"]) == {"forget_acc", "retain_acc", "val_acc", "mia"}  # no bias term: not coloured
    # lr 1e-9 for one epoch moves at most one near-tie prediction (on an AMD EPYC one of 1,347 flips even at 1e-9:
    # GA's pass in train mode updates BatchNorm's running statistics whatever the step); the largest step moves more
    changed = trials.set_index("knob:lr")["changed"]
    assert changed[1e-9] <= 1 / 1000 and changed[1e-9] < changed[0.05] and chosen["n_acting"] >= 1
    # the evaluation job of the tuned run is planned pending (the tune stage is not a checkpoint) and reads the
    # chosen knobs from chosen.json when it runs (config.resolve_tuned, via rule unlearn's input `tuned`)
    job = plan.unlearn_job("gradient_ascent", "digits", "random")
    assert job["pending_tune"]["keys"] == ["lr"] and job["knobs_from"] == "tuned"
    resolved = plan.tuned_job("gradient_ascent", "digits", "random", str(tmp_path / "ga" / "chosen.json"))
    assert resolved["knobs"]["lr"] == chosen["point"]["lr"] and "pending_tune" not in resolved

    def evaluate(tag, chosen_path):
        unlearning.run_unlearning(experiment=str(random_setup.data), request=str(random_setup.request),
                                  start=str(random_setup.baseline), model=str(tmp_path / f"{tag}.pt"),
                                  run=str(tmp_path / f"{tag}.json"), outputs=str(tmp_path / f"{tag}.npz"), spec=job,
                                  identity={"dataset": "digits", "scenario": "random", "seed": 1}, seed=1,
                                  device="cpu", threads=1, tuned=str(chosen_path), log=str(tmp_path / "log"))
        return json.loads((tmp_path / f"{tag}.json").read_text())["identity"]

    identity = evaluate("m", tmp_path / "ga" / "chosen.json")
    assert identity["knobs"]["lr"] == chosen["point"]["lr"] and identity["tuned"]["point"] == chosen["point"]
    assert identity["tuned"]["file"].endswith("chosen.json") and identity["knobs_from"] == "tuned"
    assert {k: identity["knobs"][k] for k in resolved["knobs"]} == resolved["knobs"]
    # a chosen.json whose point is outside the tuned keys, or not a valid knob value, is refused naming the file
    for tag, point, message in (("outside", {"epochs": 3}, "holds no chosen point"),
                                ("invalid", {"lr": -1.0}, "not valid for run")):
        bad = tmp_path / f"{tag}.chosen.json"
        bad.write_text(json.dumps({**chosen, "point": point}))
        with pytest.raises(Exception, match=message) as info:
            evaluate(tag, bad)
        assert str(bad) in str(info.value) and not (tmp_path / f"{tag}.pt").exists()
    # a grid that changes one value computes only that point (the others come from the study's journal)
    plan2 = parse(_ga_config([1e-9, 0.003, 0.01]))
    _tune(random_setup, tuning_setup, tmp_path, plan2.job("gradient_ascent", "digits", "random"),
          plan2.runs["gradient_ascent"].tune.as_dict(), "ga")
    log = (tmp_path / "ga" / "log").read_text()
    assert "grid search: 3 points, 2 already in" in log
    assert len(pd.read_csv(tmp_path / "ga" / "trials.csv")) == 3


def test_the_tune_stage_never_reads_the_test_split(random_setup, tuning_setup, tmp_path, monkeypatch):
    """The guard is live in the tune stage: code there that reaches for test data fails, whatever the route."""
    from unlearnbench.datasets.experiment import TestSplitAccessError
    from unlearnbench.scenarios import ForgetRequest

    plan = parse(_ga_config([0.003]))
    spec, tuning = plan.job("gradient_ascent", "digits", "random"), plan.runs["gradient_ascent"].tune.as_dict()
    original = ForgetRequest.forget_set

    def peeking(self, data):
        data.images("test")  # what a leak would look like
        return original(self, data)

    monkeypatch.setattr(ForgetRequest, "forget_set", peeking)
    with pytest.raises(TestSplitAccessError):
        _tune(random_setup, tuning_setup, tmp_path, spec, tuning, "peek")
    monkeypatch.setattr(ForgetRequest, "forget_set", original)
    chosen = _tune(random_setup, tuning_setup, tmp_path, spec, tuning, "clean")  # and without the leak it runs
    assert chosen["point"] == {"lr": 0.003}


# ---------------------------------------------------------------------------------------------- a fair race

def _built_in_methods():
    from unlearnbench.methods import REGISTRY

    return sorted(n for n, c in REGISTRY.items() if c.__module__.startswith("unlearnbench.methods."))


@pytest.mark.parametrize("method", _built_in_methods())
def test_every_method_declares_a_search_space_that_validates(method):
    """Every registered method (all of the JiT and UIB tables' rows among them) declares the space an equal-budget
    table searches, and every range end validates as the method's knob (a range outside a knob's bounds fails)."""
    from unlearnbench.config.plan import _run_spec, equal_budget_spec
    from unlearnbench.methods import REGISTRY

    space = REGISTRY[method].search_space
    assert space, f"{method}: no search space declared"
    race = {"mode": "equal_budget", "trials": 7, "seed": 0}
    run = _run_spec("r", equal_budget_spec("r", {"method": method}, race), [0])[0]
    assert run.tune.search == "tpe" and run.tune.trials == 7
    assert sorted(run.tune.keys) == sorted(space)


def test_setting_wrappers_add_their_own_space_and_the_sparse_start_is_never_tuned():
    from unlearnbench.config.plan import _run_spec, equal_budget_spec

    race = {"mode": "equal_budget", "trials": 5}
    uib = _run_spec("r", equal_budget_spec("r", {"method": "finetune", "setting": "uib"}, race), [0])[0]
    assert set(uib.tune.keys) == {"lr", "epochs", "setting_knobs.beta", "setting_knobs.tau"}
    sparse = _run_spec("r", equal_budget_spec("r", {"method": "finetune", "setting": "sparsity"}, race), [0])[0]
    assert set(sparse.tune.keys) == {"lr", "epochs"}


def test_equal_budget_tunes_every_method_with_the_same_trials_and_says_so():
    """`tuning: equal_budget`: every run of the config (sweep points aside) gets a TPE search with the same budget,
    a run's own tune block (influence's grid here) replaced; the tables' notes name the mode. as_published (the default,
    and what an absent block means) leaves the config's own tune blocks alone."""
    config = _validated(DEFAULT)
    config["methods"]["jit"]["sweep"] = {"sigma": [0.01, 0.5]}
    published = parse(config)
    assert published.race["mode"] == "as_published"
    untuned = [n for n, r in published.runs.items() if r.tune is None and r.sweep_of is None]
    assert untuned and {n for n, r in published.runs.items() if r.tune is not None} == \
        {n for n, m in config["methods"].items() if m.get("tune")}
    assert published.seed_notes(["random"])[-1].startswith("Tuning: as published:")
    config["tuning"] = {"mode": "equal_budget", "trials": 9, "seed": 3}
    fair = parse(_validated(config))
    runs = {n: r for n, r in fair.runs.items() if r.sweep_of is None}
    assert {n: (r.tune.search, r.tune.trials, r.tune.seed) for n, r in runs.items()} == \
        {n: ("tpe", 9, 3) for n in runs}
    assert all(r.tune is None for r in fair.runs.values() if r.sweep_of is not None)
    assert fair.seed_notes(["random"])[-1].startswith("Tuning: equal budget: every method's knobs chosen by TPE in 9")
    # every (dataset, scenario, run) it plans is searched: the same number of tune jobs per method
    per_run = {}
    for _, _, run in fair.tune_jobs():
        per_run[run] = per_run.get(run, 0) + 1
    assert set(per_run) == set(runs)


def test_a_method_without_a_search_space_cannot_join_an_equal_budget_table(monkeypatch):
    from unlearnbench.methods import REGISTRY

    monkeypatch.setattr(REGISTRY["ssd"], "search_space", None)
    config = _validated(DEFAULT)
    config["methods"]["ssd"] = {"method": "ssd"}
    config["tuning"] = {"mode": "equal_budget"}
    with pytest.raises(ConfigError, match=r"methods\.ssd\.method: 'ssd' declares no search space"):
        parse(_validated(config))
    config["methods"]["ssd"] = {"method": "no_such_method"}  # an unknown method is named as without the race
    with pytest.raises(ConfigError, match=r"methods\.ssd"):
        parse(_validated(config))


@pytest.mark.parametrize("method", ["gradient_ascent", "bad_teacher"])
def test_an_equal_budget_search_runs_its_budget_without_reading_test_data(method, random_setup, tuning_setup, tmp_path,
                                                                        monkeypatch):
    """The tune job of an equal-budget run: exactly its trials, every one of them, and the experiment opened only
    through the view without the test split (a reach for test data raises; the test's recording sees no test=True).
    Bad Teacher builds its incompetent teacher from the context's model factory, which the tune job provides too
    (it did not, until equal_budget first tuned BT)."""
    from unlearnbench.datasets.experiment import ExperimentData
    from unlearnbench.methods import REGISTRY

    config = _ga_config([0.003])
    config["methods"] = {method: {"method": method, "epochs": 1}}
    config["tuning"] = {"mode": "equal_budget", "trials": 3, "startup_trials": 3}
    plan = parse(_validated(config))
    spec, tuning = plan.job(method, "digits", "random"), plan.runs[method].tune.as_dict()
    assert tuning["trials"] == 3 and {d["key"] for d in tuning["dimensions"]} == set(REGISTRY[method].search_space)
    opened = []
    load = ExperimentData.load.__func__
    monkeypatch.setattr(ExperimentData, "load", classmethod(lambda cls, path, *, test=True:
                                                            opened.append(test) or load(cls, path, test=test)))
    chosen = _tune(random_setup, tuning_setup, tmp_path, spec, tuning, "fair")
    trials = pd.read_csv(tmp_path / "fair" / "trials.csv")
    assert len(trials) == 3 and opened and not any(opened)
    assert trials["error"].isna().all(), trials["error"].tolist()
    assert set(chosen["point"]) == set(REGISTRY[method].search_space)


# ---------------------------------------------------------------------------------------------- the search

TPE = {"search": "tpe", "trials": 12, "startup_trials": 4, "seed": 5, "objective": {"forget_acc": 1.0},
       "dimensions": [{"key": "lr", "kind": "float", "choices": [], "low": 1e-4, "high": 1.0, "log": True, "step": None},
                      {"key": "epochs", "kind": "int", "choices": [], "low": 1, "high": 5, "log": False, "step": None},
                      {"key": "mode", "kind": "choice", "choices": ["a", "b"], "low": None, "high": None,
                       "log": False, "step": None}]}


def _bowl(point: dict) -> dict:
    return {"value": (math.log10(point["lr"]) + 2) ** 2 + 0.1 * point["epochs"] + (point["mode"] == "b")}


def test_tpe_is_seeded_and_resumes_from_its_journal(tmp_path):
    quiet = lambda message: None  # noqa: E731
    first = search.run_search(TPE, _bowl, tmp_path / "a.journal", "s", log=quiet)
    second = search.run_search(TPE, _bowl, tmp_path / "b.journal", "s", log=quiet)
    assert [r["point"] for r in first] == [r["point"] for r in second]  # same study -> same trials
    assert len(first) == 12 and len({json.dumps(r["point"]) for r in first}) == 12
    other = search.run_search({**TPE, "seed": 6}, _bowl, tmp_path / "c.journal", "s", log=quiet)
    assert [r["point"] for r in other] != [r["point"] for r in first]
    # a search stopped after 5 trials, then killed in the middle of the 6th (a trial left running), resumes from its
    # journal and ends with the trials of the uninterrupted search
    search.run_search({**TPE, "trials": 5}, _bowl, tmp_path / "d.journal", "s", log=quiet)
    import optuna

    study = search.open_study(tmp_path / "d.journal", "s")
    study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)})  # never told: the kill
    calls = []
    resumed = search.run_search(TPE, lambda p: calls.append(p) or _bowl(p), tmp_path / "d.journal", "s", log=quiet)
    assert len(calls) == 7  # only the 7 missing trials ran
    assert [r["point"] for r in resumed] == [r["point"] for r in first]
    assert [r["value"] for r in resumed] == [r["value"] for r in first]


def test_failed_trials_count_and_are_never_chosen(tmp_path):
    from unlearnbench.tuning.tuning import select

    grid = {"search": "grid", "points": [{"lr": 0.1}, {"lr": 1.0}, {"lr": 10.0}], "objective": {"forget_acc": 1.0}}
    trials = search.run_search(grid, lambda p: {"value": None, "error": "diverged"} if p["lr"] > 5 else
                               {"value": p["lr"], "terms": {"forget_acc": 1 / p["lr"]}}, tmp_path / "g.journal", "g",
                               log=lambda m: None)
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert select(trials, grid)["point"] == {"lr": 1.0}  # re-scored under the objective's weights: 1/lr
    with pytest.raises(RuntimeError, match="every knob setting the tune stage tried failed"):
        select([t for t in trials if t["state"] == "FAIL"], grid)
