"""The measurements behind defaults and digits-scale config values of docs/methods.md (embedded default's digits data,
small CNN, CPU, one thread). Each prints one line per setting (means over seeds) and can write JSON.

  PYTHONPATH=src python benchmarks/default_measurements.py momentum [--seeds 5]
      the baseline recipe with plain vs Nesterov momentum: validation and test accuracy (digits and colour digits)
  PYTHONPATH=src python benchmarks/default_measurements.py rewind [--seeds 3]
      the 95% sparse baseline with OMP rewinding (to epoch k = 1 of 20) vs retraining from the pruned trained weights
  PYTHONPATH=src python benchmarks/default_measurements.py scale [--seeds 3] [--methods gradient_ascent,fisher_new]
          [--config config/uib_fashion_mnist.yaml --dataset fashion]
      GA, fisher_new (and influence) knobs at digits scale (or another config's dataset) (random scenario, 10% request): validation accuracy (the utility a knob
      may be chosen on) and forget accuracy / loss, next to the original and the retrain oracle. No test data.
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

ROOT = Path(__file__).resolve().parents[1]


CONFIG = {"path": ROOT / "config.yaml"}  # --config


def dataset_cfg(name: str) -> tuple[dict, dict]:
    from snakemake.utils import validate

    cfg = yaml.safe_load(Path(CONFIG["path"]).read_text())
    config = {"datasets": {"d": cfg["datasets"][name]}, "scenarios": {"random": {}}, "methods": {"x": {"method": "jit"}},
              "data": cfg.get("data", {})}
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config["datasets"]["d"], config["data"]


def experiment(work: Path, name: str):
    from unlearnbench.datasets import prepare_dataset
    from unlearnbench.datasets.experiment import ExperimentData, prepare_experiment

    ds, data_cfg = dataset_cfg(name)
    src = prepare_dataset(ds["source"], work / "src", download_dir=work / "src" / "dl", mirror=data_cfg.get("mirror"))
    path = work / f"{name}.npz"
    prepare_experiment(source=str(src), experiment=str(path), manifest=str(work / f"{name}.json"), dataset=ds,
                       data_seed=0)
    return path, ExperimentData.load(str(path)), {"model": ds["model"], "train": ds["train"]}


def accuracy(model, x, y) -> float:
    from unlearnbench.nn import engine

    return float((engine.predict_logits(model, x).argmax(1) == y.cpu()).float().mean())


def momentum(work: Path, seeds: int) -> dict:
    from unlearnbench.nn import engine
    from unlearnbench.core import seeds as seed_mod
    from unlearnbench.steps.training import new_model

    out = {}
    for name in ("digits", "digits_c"):
        _, data, recipe = experiment(work, name)
        cpu = torch.device("cpu")
        x, y = engine.to_device(data.images("train"), data.labels("train"), cpu)
        evals = {s: engine.to_device(data.images(s), data.labels(s), cpu) for s in ("val", "test")}
        for nesterov in (False, True):
            rows = []
            for seed in range(seeds):
                generator = engine.seed_everything(seed_mod.derive(seed, "train"))
                model = new_model(data, recipe["model"])
                engine.train(model, x, y, engine.TrainConfig(**{**recipe["train"], "nesterov": nesterov}),
                             generator=generator, log=lambda s: None)
                rows.append({s: accuracy(model, *evals[s]) for s in evals})
            key = f"{name} {'nesterov' if nesterov else 'plain'}"
            out[key] = rows
            print(key, {s: round(float(np.mean([r[s] for r in rows])), 4) for s in evals},
                  "test per seed", [round(r["test"], 4) for r in rows], flush=True)
    return out


def rewind(work: Path, seeds: int) -> dict:
    from unlearnbench.steps import training

    out = {}
    for name in ("digits", "digits_c"):
        exp, _, recipe = experiment(work, name)
        epochs = int(recipe["train"]["epochs"])
        k = training.rewind_epoch(epochs)
        for seed in range(seeds):
            base, early = work / f"{name}_b{seed}.pt", work / f"{name}_r{seed}.pt"
            training.train_baseline(experiment=str(exp), model=str(base), training=recipe, seed=seed, device="cpu",
                                    threads=1, rewind=str(early), rewind_epoch=k, log=str(work / "log"))
            for mode in ("rewind", "no_rewind"):
                meta = training.train_sparse_baseline(
                    experiment=str(exp), dense=str(base), model=str(work / f"{name}_s{seed}_{mode}.pt"),
                    training=recipe, sparsity=0.95, epochs=epochs, seed=seed, device="cpu", threads=1,
                    rewind=str(early) if mode == "rewind" else None, rewind_epoch=k if mode == "rewind" else None,
                    log=str(work / "log"))
                out.setdefault(f"{name} {mode} (k={k})", []).append(
                    {key: meta[key] for key in ("val_acc", "dense_val_acc", "pruned_val_acc", "rewound_val_acc",
                                                "train_seconds", "retrain_epochs")})
        for key, rows in out.items():
            if key.startswith(name + " "):
                print(key, "val acc per seed", [round(r["val_acc"], 4) for r in rows],
                      "mean %.4f" % np.mean([r["val_acc"] for r in rows]), flush=True)
    return out


SCALE_GRID = {
    "influence": [{"damping": d, "depth": 5 * round(1 / d)} for d in (0.01, 0.02, 0.05)],
    "gradient_ascent": [{}, {"batch_size": 32, "lr": 1e-3}, {"batch_size": 32, "lr": 3e-3},
                        {"batch_size": 32, "lr": 1e-2}, {"batch_size": 64, "lr": 3e-3}, {"batch_size": 64, "lr": 1e-2}],
    "fisher_new": [{"alpha": a} for a in (1e-8, 1e-7, 1e-6, 1e-5)] + [{"alpha": 1e-6, "hessian_batch_size": 1}],
}


def scale(work: Path, seeds: int, methods: list[str], dataset: str = "digits") -> dict:
    from unlearnbench.nn import engine
    from unlearnbench.steps import training
    from unlearnbench.methods import UnlearnContext, UnlearnData, build_method
    from unlearnbench.scenarios import ForgetRequest, prepare_request

    exp, data, recipe = experiment(work, dataset)
    req_path = work / "req.npz"
    prepare_request(experiment=str(exp), request=str(req_path), definition=str(work / "req.json"), scenario="random",
                    options={"type": "random", "fraction": 0.1}, data_seed=0)
    req = ForgetRequest.load(str(req_path))
    cpu = torch.device("cpu")
    sets = {"forget": engine.to_device(*req.forget_set(data), cpu), "retain": engine.to_device(*req.retain_set(data), cpu)}
    x_v, y_v = engine.to_device(data.images("val"), data.labels("val"), cpu)
    x_f, y_f = sets["forget"]

    def measure(model):
        logits = engine.predict_logits(model, x_f)
        return {"val_acc": accuracy(model, x_v, y_v), "forget_acc": float((logits.argmax(1) == y_f).float().mean()),
                "forget_loss": float(F.cross_entropy(logits, y_f))}

    out = {}
    for seed in range(seeds):
        base, oracle = work / f"b{seed}.pt", work / f"o{seed}.pt"
        training.train_baseline(experiment=str(exp), model=str(base), training=recipe, seed=seed, device="cpu",
                                threads=1, log=str(work / "log"))
        training.train_oracle(experiment=str(exp), request=str(req_path), model=str(oracle),
                              run=str(work / f"o{seed}.json"), outputs=str(work / f"o{seed}.npz"), training=recipe,
                              identity={"dataset": "digits", "scenario": "random", "seed": seed}, seed=seed,
                              device="cpu", threads=1, log=str(work / "log"))
        model, _ = training.load_model(str(base), data, cpu)
        out.setdefault("original", []).append(measure(model))
        out.setdefault("retrain oracle", []).append(measure(training.load_model(str(oracle), data, cpu)[0]))
        for method in methods:
            for knobs in SCALE_GRID[method]:
                m = build_method(method, knobs)
                net = copy.deepcopy(model)
                inputs = UnlearnData(declared=m.reads, n_train=len(data.labels("train")), n_classes=data.n_classes,
                                     **{k: v for k, v in sets.items() if k in m.reads})
                m.unlearn(net, inputs, UnlearnContext(cpu, engine.seed_everything(1000 + seed), log=lambda s: None))
                out.setdefault(f"{method} {json.dumps(knobs)}", []).append(measure(net))
    for key, rows in out.items():
        print(f"{key:60s}", {m: round(float(np.mean([r[m] for r in rows])), 4) for m in rows[0]}, flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("momentum", "rewind", "scale"))
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--methods", default="gradient_ascent,fisher_new")
    ap.add_argument("--json", default=None)
    ap.add_argument("--config", default=str(ROOT / "config.yaml"), help="the config whose dataset entry is used")
    ap.add_argument("--dataset", default="digits", help="scale: the dataset entry (random scenario, 10%%)")
    a = ap.parse_args(argv)
    CONFIG["path"] = a.config
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if a.what == "momentum":
            out = momentum(work, a.seeds or 5)
        elif a.what == "rewind":
            out = rewind(work, a.seeds or 3)
        else:
            out = scale(work, a.seeds or 3, a.methods.split(","), a.dataset)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
