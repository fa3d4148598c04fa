"""CPU smoke test of benchmarks/train_speed.py: both recipes run and the table is printed (no timing claims)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"


def _load():
    spec = importlib.util.spec_from_file_location("train_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--device", "cpu", "--n-images", "32", "--image-size", "8", "--epochs", "1", "--warmup-epochs", "1",
        "--batch-size", "16", "--naive-batch-size", "16", "--num-workers", "0"]


def test_benchmark_runs_both_recipes_on_cpu():
    pytest.importorskip("torchvision", reason="the naive baseline needs torchvision (optional for the project)")
    lines = []
    results = _load().main(TINY, out=lines.append)
    assert results["naive"]["images"] == 32 and results["ours"]["images"] == 32
    assert results["naive"]["images_per_s"] > 0 and results["ours"]["images_per_s"] > 0
    assert results["ratio"] == pytest.approx(results["ours"]["images_per_s"] / results["naive"]["images_per_s"])
    text = "\n".join(lines)
    assert text.startswith("command: python benchmarks/train_speed.py --device cpu")
    assert "torch " in text and "ratio ours / naive" in text


def test_benchmark_engine_only_needs_no_torchvision():
    lines = []
    results = _load().main(TINY[:-2] + ["--skip-naive", "--arch", "vgg11_bn", "--width", "8"], out=lines.append)
    assert "naive" not in results and results["ours"]["images"] == 32
    assert not any("ratio" in line for line in lines)


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_job_startup_benchmark_runs_both_sides_with_identical_outputs():
    """benchmarks/job_startup.py: fresh interpreter per job vs the job server (one job each; no timing claim)."""
    path = SCRIPT.with_name("job_startup.py")
    spec = importlib.util.spec_from_file_location("job_startup", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = []
    results = module.main(["--jobs", "1"], out=lines.append)
    assert results["identical"] is True
    assert results["fresh_s"] > 0 and results["server_s"] > 0
    assert any(line.startswith("ratio fresh / server") for line in lines)
