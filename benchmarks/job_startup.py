"""Per-job cost of a local workflow run: a fresh interpreter per job (naive) vs the job server, in one process.

Both sides run the same real job, the embedded default's `finetune` unlearning job on scikit-learn's digits
(load data and baseline, unlearn, evaluate, write model, run.json and outputs.npz), --jobs times each, one
after another:

  fresh   `python -c <call>` per job: what Snakemake's `script:` does without the server (interpreter start,
          `import torch` and the package, the job).
  server  unlearnbench.runtime.workflow.run_job through one unlearnbench.runtime.jobserver process started for this benchmark
          (started and preloaded before the clock; its client here is this process, so the client's own
          interpreter start, which Snakemake's script: pays on both sides, is not in either figure).

Prints seconds per job for each and the ratio, then checks that both sides wrote identical outputs.

  python benchmarks/job_startup.py              # 10 jobs each
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _setup(root: Path) -> dict:
    from unlearnbench.steps import training
    from unlearnbench.datasets import prepare_dataset
    from unlearnbench.datasets.experiment import prepare_experiment
    from unlearnbench.scenarios import prepare_request

    source = prepare_dataset("digits", root / "source", download_dir=root / "downloads")
    dataset_cfg = {"source": "digits", "split": {"val_fraction": 0.1, "test_fraction": 0.25},
                   "colour": {"enabled": False},
                   "model": {"arch": "small_cnn", "width": 16},
                   "train": {"epochs": 20, "batch_size": 128, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                             "label_smoothing": 0.0, "schedule": "onecycle", "augment": False}}
    data, request, baseline = root / "experiment.npz", root / "random.npz", root / "baseline.pt"
    prepare_experiment(source=str(source), experiment=str(data), manifest=str(data.with_suffix(".json")),
                       dataset=dataset_cfg, data_seed=0)
    prepare_request(experiment=str(data), request=str(request), definition=str(request.with_suffix(".json")),
                    scenario="random", options={"fraction": 0.1}, data_seed=0)
    training.train_baseline(experiment=str(data), model=str(baseline),
                            training={"model": dataset_cfg["model"], "train": dataset_cfg["train"]}, seed=0,
                            device="cpu", threads=1, log=str(root / "setup.log"))
    return {"data": str(data), "request": str(request), "baseline": str(baseline)}


def _job_args(paths: dict, out: Path, i: int) -> dict:
    from unlearnbench.config.plan import RunSpec

    spec = RunSpec(name="finetune", method="finetune", setting="standard", knobs={"epochs": 5, "lr": 0.02},
                   setting_knobs={}).job("digits", "random")
    return dict(experiment=paths["data"], request=paths["request"], start=paths["baseline"],
                model=str(out / f"model{i}.pt"), run=str(out / f"run{i}.json"), outputs=str(out / f"outputs{i}.npz"),
                spec=spec, identity={"dataset": "digits", "scenario": "random", "seed": i}, seed=i, device="cpu",
                threads=1, log=str(out / f"job{i}.log"))


def main(argv=None, out=print) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    args = parser.parse_args(argv)

    import torch

    from unlearnbench.runtime import jobserver
    from unlearnbench.runtime.workflow import run_job

    out(f"command: python benchmarks/job_startup.py {shlex.join(argv or sys.argv[1:])}".rstrip())
    out(f"python {sys.version.split()[0]}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = _setup(root)
        fresh_dir, server_dir = root / "fresh", root / "server"
        fresh_dir.mkdir()
        server_dir.mkdir()

        start = time.perf_counter()
        for i in range(args.jobs):
            call = f"from unlearnbench.steps.unlearning import run_unlearning; run_unlearning(**{_job_args(paths, fresh_dir, i)!r})"
            subprocess.run([sys.executable, "-c", call], check=True, timeout=600)
        fresh = (time.perf_counter() - start) / args.jobs

        server = jobserver.start(log_path=str(root / "server.log"))
        try:
            os.environ[jobserver.ENV_VAR] = server.address
            run_job("unlearnbench.core.codehash:closure", {}, str(root / "warm.log"))  # waits out the preload
            start = time.perf_counter()
            for i in range(args.jobs):
                run_job("unlearnbench.steps.unlearning:run_unlearning", _job_args(paths, server_dir, i),
                        str(server_dir / f"job{i}.log"))
            served = (time.perf_counter() - start) / args.jobs
        finally:
            os.environ.pop(jobserver.ENV_VAR, None)
            server.stop()

        identical = all(
            all(np.array_equal(a[k], b[k]) for k in a.files)
            for a, b in ((np.load(fresh_dir / f"outputs{i}.npz"), np.load(server_dir / f"outputs{i}.npz"))
                         for i in range(args.jobs)))
    out(f"fresh interpreter per job: {fresh:.3f} s/job")
    out(f"job server:                {served:.3f} s/job")
    out(f"ratio fresh / server:      {fresh / served:.2f}x")
    out(f"outputs identical: {identical}")
    return {"fresh_s": fresh, "server_s": served, "ratio": fresh / served, "identical": identical}


if __name__ == "__main__":
    main()
