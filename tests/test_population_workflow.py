"""The population stage end to end on a tiny real population (digits, 60 forget images, N = 6, challenge protocol):
one `snakemake --cores 2` invocation makes the forget-quality table and figures; the retrained-vs-retrained U-LiRA
sits at chance while the originals (trained on the forget set) are told apart from the retrained models; a deleted
member is rerun alone and its outputs are identical; `snakemake -n` then has nothing to do."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "slurm"))
from scaled import run_to_completion  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CONFIG = {
    "device": "cpu", "seeds": 1,
    "datasets": {"digits": {"source": "digits", "scenarios": ["random_n"], "colour": {"enabled": False},
                            "model": {"arch": "small_cnn", "width": 16},
                            "train": {"epochs": 20, "batch_size": 128, "lr": 0.05}}},
    "scenarios": {"random_n": {"n": 60}},
    "methods": {"finetune": {"method": "finetune", "epochs": 1, "lr": 0.02, "batch_size": 64}},
    "population": {"scenarios": ["random_n"], "size": 6, "protocol": "challenge", "bootstrap": 50},
}


def test_a_tiny_real_population(tmp_path):
    results = tmp_path / "results"
    config = tmp_path / "population.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "results": str(results)}))
    run_to_completion(config, ROOT, ROOT / "src", 600)
    paper = results / "paper"
    for name in ("table_forget_quality_digits_random_n.tex", "fig_ulira_roc_digits_random_n.png",
                 "fig_forget_epsilon_digits_random_n.png", "fig_forget_quality_vs_n_digits_random_n.png"):
        assert (paper / name).stat().st_size > 0, name
    stage = results / "digits" / "random_n" / "population"
    frame = pd.read_csv(stage / "forget_quality.csv").set_index("run")
    assert list(frame.index) == ["finetune", "original", "retrain"]
    assert abs(frame.loc["retrain", "ulira_auc"] - 0.5) < 0.08, frame.loc["retrain"]
    assert frame.loc["original", "ulira_auc"] > 0.6 and frame.loc["original", "ulira_auc_low"] > 0.55
    assert frame.loc["retrain", "forget_score_normalised"] == 1.0
    per_example = pd.read_csv(stage / "per_example.csv")
    assert len(per_example) == 3 * 60 and set(per_example.run) == set(frame.index)
    by_n = pd.read_csv(stage / "scores_by_n.csv")
    assert sorted(by_n.n_models.unique()) == [4, 6]
    at_6 = by_n[by_n.n_models == 6].set_index("run")
    assert np.allclose(at_6.loc[frame.index, "forget_score"], frame.forget_score)  # N = 6 is the table's population
    assert np.allclose(at_6.loc[frame.index, "ulira_auc"], frame.ulira_auc)
    table = (paper / "table_forget_quality_digits_random_n.tex").read_text()
    assert "RTRN vs RTRN (ceiling)" in table and "FNTN" in table and "BSLN" in table

    # a member's outputs are the same when it is rerun (its files deleted and asked for: only its job runs; the
    # stage's job then reruns on its newer input and gives the same numbers)
    member = stage / "finetune" / "member2"
    before = dict(np.load(member / "outputs.npz"))
    for f in member.iterdir():
        f.unlink()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    rerun = subprocess.run([sys.executable, "-m", "snakemake", str(member / "outputs.npz"), "--cores", "2",
                            "--configfile", str(config)], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    stats = (rerun.stdout + rerun.stderr).split("Job stats:")[1].split("Select jobs")[0]
    assert re.search(r"population_member\s+1\b", stats) and re.search(r"total\s+1\b", stats), stats
    after = dict(np.load(member / "outputs.npz"))
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    run_to_completion(config, ROOT, ROOT / "src", 300)
    again = pd.read_csv(stage / "forget_quality.csv").set_index("run")
    assert again.equals(frame), (again - frame.select_dtypes("number")).abs().max()
