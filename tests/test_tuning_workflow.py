"""Sweeps and the tune stage in the Snakemake workflow (docs/tuning.md), on a small digits config: sweep points are
runs with their own paths and runs.csv rows, changing one grid value reruns that point only, a tuned run's
evaluation reads the knobs its tune checkpoint chose, and a changed search reuses the trials already in its
journal. Every snakemake call has a timeout."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from test_workflow import REPORT, _copy_workflow, _write_config, planned_jobs, snakemake

pytestmark = pytest.mark.slow

SWEEP = [0.001, 0.01]
TUNE_GRID = [0.001, 0.003, 0.01]
CONFIG = {
    "results": "results",
    "seeds": 2,
    "datasets": {"digits": {"label": "Digits", "source": "digits", "split": {"val_fraction": 0.1, "test_fraction": 0.25},
                            "colour": {"enabled": False}, "model": {"arch": "small_cnn", "width": 8},
                            "train": {"epochs": 4, "batch_size": 128, "lr": 0.05}}},
    "scenarios": {"random": {"fraction": 0.1}},
    "methods": {"finetune": {"method": "finetune", "epochs": 1, "lr": 0.02},
                "gradient_ascent": {"method": "gradient_ascent", "epochs": 1, "lr": 0.003, "sweep": {"lr": SWEEP},
                                    "tune": {"space": {"lr": TUNE_GRID}}}},
}
SWEEP_REPORT = {**REPORT, "sweep_summary": 1, "sensitivity": 1}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    workdir = _copy_workflow(tmp_path_factory.mktemp("tuning_workflow"))
    cfg = _write_config(workdir, CONFIG, "tuned")
    result = snakemake(workdir, "--configfile", str(cfg))
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir, cfg


def test_sweep_points_are_runs_with_their_own_paths_rows_and_figure(tuned):
    workdir, _ = tuned
    results = workdir / "results"
    for lr in SWEEP:
        assert (results / f"digits/random/seed1/gradient_ascent~lr={lr!r}/run.json").exists()
    runs = pd.read_csv(results / "summary/runs.csv")
    points = runs[runs["sweep"] == "gradient_ascent"]
    assert set(points["run"]) == {f"gradient_ascent~lr={lr!r}" for lr in SWEEP}
    assert set(points["knob_lr"]) == set(SWEEP) and set(points["knobs_from"]) == {"sweep"}
    assert set(points.groupby("run").seed.nunique()) == {2}
    # tables and statistics hold table rows only; the sweep has its own summary and figure
    summary = pd.read_csv(results / "summary/summary.csv")
    assert list(summary[summary.method == "gradient_ascent"].groupby("metric").size().unique()) == [1]
    sweeps = pd.read_csv(results / "summary/sweeps.csv")
    assert set(sweeps["knob:lr"]) == set(SWEEP) and set(sweeps["n"]) == {2}
    assert (results / "paper/fig_sensitivity_gradient_ascent.png").stat().st_size > 0
    assert planned_jobs(workdir, "--configfile", str(tuned[1])) == {}


def test_the_tuned_run_is_evaluated_with_the_chosen_knobs(tuned):
    workdir, _ = tuned
    results = workdir / "results"
    chosen = json.loads((results / "digits/random/tune/gradient_ascent/chosen.json").read_text())
    trials = pd.read_csv(results / "digits/random/tune/gradient_ascent/trials.csv")
    assert chosen["point"]["lr"] == trials.loc[trials["objective"].idxmin(), "knob:lr"]
    assert chosen["seeds"] == [0] and chosen["n_complete"] == len(TUNE_GRID)
    for seed in (0, 1):
        identity = json.loads((results / f"digits/random/seed{seed}/gradient_ascent/run.json").read_text())["identity"]
        assert identity["knobs"]["lr"] == chosen["point"]["lr"] and identity["knobs_from"] == "tuned"
    table = (results / "paper/table_uib.tex").read_text()
    assert "GA (tuned on validation data)" in table


def test_changing_one_sweep_value_reruns_that_point_only(tuned):
    workdir, _ = tuned
    changed = yaml.safe_load(yaml.safe_dump(CONFIG))
    changed["methods"]["gradient_ascent"]["sweep"]["lr"] = [0.001, 0.02]
    cfg = _write_config(workdir, changed, "changed_sweep")
    assert planned_jobs(workdir, "--configfile", str(cfg)) == {"unlearn": 2, **SWEEP_REPORT}
    dry = snakemake(workdir, "--configfile", str(cfg), "--dry-run", timeout=300).stdout
    assert "run=gradient_ascent~lr=0.02" in dry and "run=gradient_ascent~lr=0.001" not in dry


def test_a_changed_search_reuses_its_journal(tuned):
    workdir, _ = tuned
    changed = yaml.safe_load(yaml.safe_dump(CONFIG))
    changed["methods"]["gradient_ascent"]["tune"]["space"]["lr"] = TUNE_GRID + [1e-6]
    cfg = _write_config(workdir, changed, "changed_tune")
    planned = planned_jobs(workdir, "--configfile", str(cfg))
    assert planned.get("tune") == 1 and "baseline" not in planned and "tuning_oracle" not in planned
    result = snakemake(workdir, "--configfile", str(cfg))
    assert result.returncode == 0, result.stderr[-3000:]
    log = (workdir / "results/logs/tune/digits_random_gradient_ascent.log").read_text()
    assert f"grid search: {len(TUNE_GRID) + 1} points, {len(TUNE_GRID)} already in" in log
    assert len(pd.read_csv(workdir / "results/digits/random/tune/gradient_ascent/trials.csv")) == len(TUNE_GRID) + 1
    assert planned_jobs(workdir, "--configfile", str(cfg)) == {}
