"""Shipped configs at miniature scale, for the SLURM, fault and config tests: the same datasets, scenarios, runs,
tune stages, sweeps, artifacts and settings, with one seed (or `seeds`), at most 4 training epochs, width-8
models, a few trials and short sweeps. `scaled_default` is the embedded default (config.yaml) scaled down;
`miniature` does the same to any config. Derived from the config file when called, so a test follows the config's
shape as it changes."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# knob -> the most a miniature run keeps (epochs and inner-loop counts of the methods)
CAPS = {"epochs": 1, "sgda_epochs": 1, "pseudo_batches": 2, "noise_copies": 2, "n_perturbations": 5, "depth": 5,
        "forget_noise_steps": 5, "retain_noise_steps": 5, "noise_steps": 5, "impair_epochs": 1, "repair_epochs": 1,
        "generator_steps": 2, "student_steps": 2}
# per method: what a miniature run keeps of its cost knobs (IF's LiSSA Hessian-vector products and its automatic
# scale's power iteration are set from these even where the config leaves them at their defaults)
METHOD_CAPS = {"influence": {"batch_size": 8, "power_iters": 2, "power_sample": 64}}
# per method: knobs a miniature run sets. IF's automatic LiSSA scale (scale 0: 1.2 x the top Hessian eigenvalue by
# power iteration) underestimates the eigenvalue with the capped iterations and LiSSA then diverges (measured on
# paper_uib's ResNet-18: |h| x10 a step); a fixed large scale keeps the capped recursion contracting
METHOD_SET = {"influence": {"scale": 1000.0}}
# per scenario type: option caps (JiT's worst case forgets 50 of one class; a miniature class has a handful)
SCENARIO_CAPS = {"worst_case": {"n": 5}}
# small requests so that jobs share the 2-core test cluster (fake GPUs: gres.conf)
RESOURCES = {"train": {"gpu": 1, "cpus_per_gpu": 1, "mem_mb": 400, "runtime": 10},
             "unlearn": {"gpu": 1, "cpus_per_gpu": 1, "mem_mb": 400, "runtime": 5},
             "tune": {"gpu": 1, "cpus_per_gpu": 1, "mem_mb": 400, "runtime": 10}}


def _cap_seeds(value, seeds: int):
    if isinstance(value, int) and not isinstance(value, bool):
        return min(value, seeds)
    if isinstance(value, list):
        return [v for v in value if v < seeds][:seeds] or [0]
    return value


def _short(values: list, n: int = 2) -> list:
    return list(values[:n])


def _lean_sweep(sweep: dict) -> None:
    """A sweep over several knobs keeps two values of the first and one of each other (two points, not a grid)."""
    first = True
    for key, values in sweep.items():
        if isinstance(values, dict):
            _lean_sweep(values)
            first = False
        elif isinstance(values, list):
            sweep[key] = _short(values, 2 if first else 1)
            first = False


def _method_knobs(method: str | None) -> dict:
    """The knob defaults of a registered method (empty for an unknown name: the config check reports it)."""
    import dataclasses

    from unlearnbench.methods import REGISTRY

    if method not in REGISTRY:
        return {}
    return {f.name: f.default for f in dataclasses.fields(REGISTRY[method].Knobs)}


def _capped(value, cap):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > cap


def _shrink_run(run: dict, seeds: int, lean: bool = False) -> None:
    # a cap applies to every knob the method has, set in the config or left at its default (EMMN's 80 noise
    # copies are a default), and to the same knob in its per-scenario and per-dataset layers
    defaults = _method_knobs(run.get("method"))
    caps = {**{k: v for k, v in CAPS.items() if k in defaults}, **METHOD_CAPS.get(run.get("method"), {})}
    for key, cap in caps.items():
        if _capped(run.get(key, defaults.get(key)), cap):
            run[key] = cap
    for key, value in METHOD_SET.get(run.get("method"), {}).items():
        run[key] = value
        for layer in [*(run.get("by_scenario") or {}).values(), *(run.get("by_dataset") or {}).values()]:
            layer.pop(key, None)
    for layer in [*(run.get("by_scenario") or {}).values(), *(run.get("by_dataset") or {}).values()]:
        for key, cap in caps.items():
            if _capped(layer.get(key), cap):
                layer[key] = cap
    tune = run.get("tune")
    if tune:
        if tune.get("search") == "tpe" or "trials" in tune:
            tune["trials"] = min(tune.get("trials", 2), 2)
        for key, space in list((tune.get("space") or {}).items()):
            if isinstance(space, list):
                tune["space"][key] = _short(space)
        if "seeds" in tune:
            tune["seeds"] = _cap_seeds(tune["seeds"], seeds)
    for key in ("sweep",):
        sweep = run.get(key)
        if isinstance(sweep, dict):
            for k, values in sweep.items():
                if isinstance(values, list):
                    sweep[k] = _short(values)
                elif isinstance(values, dict):
                    sweep[k] = {kk: _short(vv) if isinstance(vv, list) else vv for kk, vv in values.items()}
    if lean and isinstance(run.get("sweep"), dict):
        _lean_sweep(run["sweep"])
    if isinstance(run.get("sweep_list"), list):
        run["sweep_list"] = run["sweep_list"][:2]
    if "sweep_seeds" in run:
        run["sweep_seeds"] = _cap_seeds(run["sweep_seeds"], seeds)


def _keep_variants(cfg: dict, variants: int) -> None:
    """At most `variants` scenarios of each type (the first ones in config order, and every scenario one of them is
    `tuned_by`); the dropped ones leave the datasets' and runs' scenario lists, `by_scenario` and the UIB table's
    scenario list. A paper config's per-class repeats (JiT's rocket, mushroom, baby, lamp, sea) exercise the same
    rules and the same per-class breakdown table with two classes as with five."""
    scenarios = cfg.get("scenarios") or {}
    kept, per_type = set(), {}
    for name, entry in scenarios.items():
        kind = (entry or {}).get("type", name)
        if per_type.get(kind, 0) < variants:
            per_type[kind] = per_type.get(kind, 0) + 1
            kept.add(name)
    kept |= {(scenarios[n] or {}).get("tuned_by") for n in kept} - {None}
    for name in set(scenarios) - kept:
        del scenarios[name]
    for ds in (cfg.get("datasets") or {}).values():
        if "scenarios" in ds:
            ds["scenarios"] = [s for s in ds["scenarios"] if s in kept]
    for run in (cfg.get("methods") or {}).values():
        if "scenarios" in run:
            run["scenarios"] = [s for s in run["scenarios"] if s in kept]
        if "by_scenario" in run:
            run["by_scenario"] = {s: v for s, v in run["by_scenario"].items() if s in kept}
    uib = (cfg.get("artifacts") or {}).get("uib") or {}
    if "scenarios" in uib:
        uib["scenarios"] = [s for s in uib["scenarios"] if s in kept]
    population = cfg.get("population") or {}
    if "scenarios" in population:
        population["scenarios"] = [s for s in population["scenarios"] if s in kept] or [next(iter(kept))]


def miniature(cfg: dict, results: str | Path, seeds: int = 1, epochs: int = 4, variants: int | None = None,
              train_size: int = 1500, test_size: int = 500, lean: bool = False) -> dict:
    """`config` at miniature scale (module docstring). `variants`: at most that many scenarios of a type;
    `train_size` / `test_size`: the most images a non-digits source keeps; `lean`: every sweep two points."""
    cfg = copy.deepcopy(cfg)
    if variants is not None:
        _keep_variants(cfg, variants)
    cfg["results"] = str(results)
    cfg["device"] = "cpu"
    cfg["seeds"] = seeds
    for name, scenario in cfg.get("scenarios", {}).items():
        if scenario and "seeds" in scenario:
            scenario["seeds"] = _cap_seeds(scenario["seeds"], seeds)
        for key, cap in SCENARIO_CAPS.get((scenario or {}).get("type", name), {}).items():
            if scenario is not None and _capped(scenario.get(key, cap + 1), cap):
                scenario[key] = cap
    for ds in cfg.get("datasets", {}).values():
        model = ds.setdefault("model", {})
        model["width"] = min(model.get("width", 8), 8)
        train = ds.setdefault("train", {})
        train["epochs"] = min(train.get("epochs", epochs), epochs)
        if ds.get("source") != "digits":  # larger sources (MNIST-5k: 5,000; the rest 60,000): a stratified subset
            split = ds.setdefault("split", {})
            split["train_size"] = min(split.get("train_size", train_size), train_size)
            split["test_size"] = min(split.get("test_size", test_size), test_size)
    if isinstance(cfg.get("sparse_baseline"), dict) and cfg["sparse_baseline"].get("epochs"):
        cfg["sparse_baseline"]["epochs"] = min(cfg["sparse_baseline"]["epochs"], epochs)
    for run in cfg.get("methods", {}).values():
        _shrink_run(run, seeds, lean)
    if cfg.get("tuning"):  # an equal-budget race: every method's search, at two trials
        cfg["tuning"]["trials"] = min(cfg["tuning"].get("trials", 2), 2)
        if "startup_trials" in cfg["tuning"]:
            cfg["tuning"]["startup_trials"] = min(cfg["tuning"]["startup_trials"], 2)
        if "seeds" in cfg["tuning"]:
            cfg["tuning"]["seeds"] = _cap_seeds(cfg["tuning"]["seeds"], seeds)
    xs = cfg.get("xs") or {}
    if xs.get("tabular"):
        xs["tabular"].update(folds=2, lambdas=[0.0, 1.0], gammas=[0, 10], eg_bounds=[0.05], budgets=[0.1])
    if xs.get("trajectories"):
        xs["trajectories"].update(train_epochs=3, trials=1)
    if xs.get("barycenter"):
        xs["barycenter"].update(n_per_group=min(xs["barycenter"].get("n_per_group", 16), 16), image_size=16)
    if cfg.get("population"):  # the smallest population U-LiRA fits (3 models each; 6 retrained for the ceiling)
        cfg["population"].update(size=min(cfg["population"].get("size", 3), 3),
                                 bootstrap=min(cfg["population"].get("bootstrap", 20), 20),
                                 retain_sample=min(cfg["population"].get("retain_sample", 50), 50))
    cfg["resources"] = copy.deepcopy(RESOURCES)
    return cfg


def run_to_completion(config: Path, workdir: Path, src: Path, seconds: int) -> None:
    """One `snakemake --cores 2` invocation of `config` in `workdir` with the package in `src` (killed after
    `seconds`): asserts rc 0, then that `snakemake -n` has nothing to do."""
    import os
    import subprocess
    import sys

    snakemake = [sys.executable, "-m", "snakemake"]
    env = {**os.environ, "PYTHONPATH": str(src)}
    run = subprocess.run(["timeout", "-s", "INT", "-k", "30", str(seconds), *snakemake, "--cores", "2",
                          "--configfile", str(config)], cwd=workdir, capture_output=True, text=True, env=env,
                         timeout=seconds + 100)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    dry = subprocess.run([*snakemake, "-n", "--configfile", str(config)], cwd=workdir, capture_output=True,
                         text=True, env=env, timeout=300)
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-3000:]


def scaled_default(results: str | Path, seeds: int = 1) -> dict:
    return miniature(yaml.safe_load((ROOT / "config.yaml").read_text()), results, seeds)


if __name__ == "__main__":  # python tests/slurm/scaled.py RESULTS [CONFIG] > scaled.yaml
    import sys

    results = sys.argv[1] if len(sys.argv) > 1 else "results"
    source = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "config.yaml"
    print(yaml.safe_dump(miniature(yaml.safe_load(source.read_text()), results), sort_keys=False))
