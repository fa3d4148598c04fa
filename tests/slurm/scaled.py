"""The embedded default (config.yaml), scaled down for the SLURM and fault tests: the same datasets, scenarios,
runs, tune stage, JiT tables, Xu & Strohmer stage, Sparsity and UIB settings, with one seed, fewer epochs, fewer
trials and smaller models. Derived from config.yaml when called, so the test follows the default's shape."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def scaled_default(results: str | Path, seeds: int = 1) -> dict:
    cfg = copy.deepcopy(yaml.safe_load((ROOT / "config.yaml").read_text()))
    cfg["results"] = str(results)
    cfg["device"] = "cpu"
    cfg["seeds"] = seeds
    for scenario in cfg["scenarios"].values():
        if "seeds" in scenario:
            scenario["seeds"] = min(scenario["seeds"], seeds)
    for ds in cfg["datasets"].values():
        ds["model"]["width"] = 8
        ds["train"]["epochs"] = min(ds["train"]["epochs"], 4)
    for run in cfg["methods"].values():
        for key, cap in (("epochs", 1), ("sgda_epochs", 1), ("pseudo_batches", 2), ("noise_copies", 2),
                         ("n_perturbations", 5), ("depth", 5)):
            if key in run:
                run[key] = min(run[key], cap)
        tune = run.get("tune")
        if tune and tune.get("search") == "tpe":
            tune["trials"] = min(tune.get("trials", 3), 3)
    xs = cfg.get("xs") or {}
    if "tabular" in xs:
        xs["tabular"].update(folds=2, lambdas=[0.0, 1.0], gammas=[0, 10], eg_bounds=[0.05], budgets=[0.1])
    if "trajectories" in xs:
        xs["trajectories"].update(train_epochs=3, trials=1)
    # small requests so that jobs share the 2-core test cluster (fake GPUs: gres.conf)
    cfg["resources"] = {"train": {"gpu": 1, "cpus_per_gpu": 1, "mem_mb": 400, "runtime": 10},
                        "unlearn": {"gpu": 1, "cpus_per_gpu": 1, "mem_mb": 400, "runtime": 5},
                        "tune": {"gpu": 1, "cpus_per_gpu": 1, "mem_mb": 400, "runtime": 10}}
    return cfg


if __name__ == "__main__":  # python tests/slurm/scaled.py RESULTS > scaled.yaml
    import sys

    print(yaml.safe_dump(scaled_default(sys.argv[1] if len(sys.argv) > 1 else "results"), sort_keys=False))
