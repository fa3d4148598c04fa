"""The shapes every axis shares: registries found on disk, a torch-free config parse, code hashes that follow the
code a job runs, keyword job entry points, safe checkpoints and bundles with clear errors."""
from __future__ import annotations

import ast
import copy
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from unlearnbench.core import codehash
from unlearnbench.config.plan import RunSpec, parse
from unlearnbench.core.errors import ConfigError, InputFileError

ROOT = Path(__file__).resolve().parents[1]
# a UIB-shaped config with every kind of run (settings, JiT, GA) on the bias and random scenarios
DEFAULT = yaml.safe_load((ROOT / "config" / "uib_digits.yaml").read_text())


def _validated(config: dict) -> dict:
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config


def test_parsing_the_default_config_imports_no_torch():
    """The Snakefile process validates every run, scenario and knob without importing torch (a subprocess, so this
    test's own imports do not count)."""
    code = ("import sys, yaml; from snakemake.utils import validate; c = yaml.safe_load(open('config.yaml')); "
            "validate(c, 'config/schema.yaml'); from unlearnbench.config.plan import parse; p = parse(c); "
            "[p.job(r, d, s) for d, s in p.experiments for r in p.runs_for(s)]; "
            "import unlearnbench.methods, unlearnbench.scenarios; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_registries_find_every_module_on_disk():
    from unlearnbench import methods, scenarios

    method_files = {p.stem for p in (ROOT / "src/unlearnbench/methods").glob("*.py")
                    if p.stem not in ("__init__", "base") and not p.stem.startswith("_")}  # _common: shared helpers
    assert set(methods.MODULES) == method_files
    assert {"sparsity", "uib"} <= set(methods.WRAPPERS) and "finetune" in methods.REGISTRY
    scenario_files = {p.stem for p in (ROOT / "src/unlearnbench/scenarios").glob("*.py")
                      if p.stem not in ("__init__", "base") and not p.stem.startswith("_")}  # a helper module
    assert set(scenarios.MODULES) == scenario_files
    assert {cls.__module__.rsplit(".", 1)[1] for cls in scenarios.REGISTRY.values()} == scenario_files


def test_plan_holds_every_run_with_its_knobs_filled_and_its_start():
    plan = parse(_validated(DEFAULT))
    assert plan.seeds == list(range(10))
    assert plan.experiments == [("digits_c", "bias"), ("digits", "random")]
    # reference oracles come from the scenario types: the bias scenario declares Warnecke's replacement oracle too
    assert plan.oracles("bias") == ["retrain", "retrain_replace"] and plan.oracles("random") == ["retrain"]
    assert plan.all_oracles == ["retrain", "retrain_replace"]
    job = plan.job("sparsity_influence", "digits", "random")
    assert job["method"] == "influence" and job["setting"] == "sparsity"
    assert job["start"] == "sparse_baseline" and job["start_params"] == {"sparsity": 0.95}
    assert job["knobs"]["repeats"] == 1  # a default the config does not state
    assert plan.job("finetune", "digits", "random")["start"] == "baseline"


def test_per_scenario_and_per_dataset_overrides_reach_the_job():
    config = _validated(DEFAULT)
    config["methods"]["jit"]["by_dataset"] = {"digits": {"lr": 0.002}}
    config["methods"]["jit"]["by_scenario"] = {"random": {"sigma": 0.01}}
    config["methods"]["uib_finetune"]["by_scenario"] = {"bias": {"setting_knobs": {"beta": 0.1}}}
    plan = parse(config)
    assert plan.job("jit", "digits", "random")["knobs"]["sigma"] == 0.01
    assert plan.job("jit", "digits", "random")["knobs"]["lr"] == 0.002
    assert plan.job("jit", "digits_c", "bias")["knobs"]["sigma"] == 0.5
    assert plan.job("jit", "digits", "random")["overridden"] == ["lr", "sigma"]
    assert plan.job("uib_finetune", "digits_c", "bias")["setting_knobs"]["beta"] == 0.1
    assert plan.job("uib_finetune", "digits", "random")["setting_knobs"]["beta"] == 0.01


@pytest.mark.parametrize("mutate,key", [
    (lambda c: c["methods"]["jit"].update(by_scenario={"random": {"sigma": -1.0}}), "methods.jit.sigma"),
    (lambda c: c["methods"]["jit"].update(by_scenario={"nope": {"sigma": 1.0}}), "methods.jit.by_scenario.nope"),
    (lambda c: c["methods"]["jit"].update(scenarios=["nope"]), "methods.jit.scenarios"),
    (lambda c: c["methods"]["jit"].update(lr=float("nan")), "methods.jit.lr"),
    (lambda c: c["methods"]["uib_scrub"].update(setting="nope"), "methods.uib_scrub.setting"),
    (lambda c: c["methods"]["gradient_ascent"].update(setting="uib"), "methods.gradient_ascent.setting"),
    (lambda c: c["scenarios"].update(extra={"type": "nope"}), "scenarios.extra.type"),
    (lambda c: c["scenarios"]["bias"].update(pattern_fraction=1.0), "scenarios.bias.pattern_fraction"),
    (lambda c: c["scenarios"]["random"].update(fraction=1.5), "scenarios.random.fraction"),
    (lambda c: c["scenarios"]["bias"].update(oracle="exact"), "scenarios.bias.oracle"),
    (lambda c: c["methods"].update(retrain_replace={"method": "finetune"}), "methods.retrain_replace"),
    (lambda c: c["datasets"]["digits_c"]["colour"].update(mode="patch") or
     c["datasets"]["digits_c"]["train"].update(augment=True), "datasets.digits_c.colour.mode"),
    (lambda c: c.update(results=""), "results"),
    (lambda c: c["datasets"]["digits"]["colour"].update(enabled=False) or
     c["datasets"]["digits"].update(scenarios=["bias"]), "datasets.digits.colour.enabled"),
])
def test_bad_config_names_its_key(mutate, key):
    config = _validated(DEFAULT)
    mutate(config)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse(config)


def test_several_scenarios_of_one_type_coexist():
    config = _validated(DEFAULT)
    config["scenarios"]["random_5"] = {"type": "random", "fraction": 0.05}
    config["datasets"]["digits"]["scenarios"] = ["random", "random_5"]
    plan = parse(config)
    assert ("digits", "random_5") in plan.experiments


def test_a_method_restricted_to_some_scenario_types_is_a_config_error_elsewhere(monkeypatch):
    from unlearnbench.methods import REGISTRY

    monkeypatch.setattr(REGISTRY["gradient_ascent"], "scenarios", frozenset({"full_class"}))
    config = _validated(DEFAULT)
    with pytest.raises(ConfigError, match=r"methods\.gradient_ascent\.method: 'gradient_ascent' is defined for "
                                          r"full_class scenarios only"):
        parse(config)
    config["methods"]["gradient_ascent"]["scenarios"] = ["bias"]
    with pytest.raises(ConfigError, match="is 'bias'"):
        parse(config)


# ---------------------------------------------------------------------------------------------- code hashes

def test_code_hash_follows_imports_and_ignores_docstrings_and_comments(tmp_path, monkeypatch):
    package = tmp_path / "unlearnbench"
    for sub in ("methods", "core", "nn"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "methods" / "__init__.py").write_text("from ..core.registry import discover\n")
    (package / "core" / "registry.py").write_text("X = 1\n")
    (package / "nn" / "engine.py").write_text('"""doc"""\nSTEP = 1\n')
    (package / "methods" / "base.py").write_text("from ..core.lazy import lazy_import\n"
                                                 "engine = lazy_import('unlearnbench.nn.engine')\n")
    (package / "core" / "lazy.py").write_text("def lazy_import(name):\n    return name\n")
    (package / "methods" / "a.py").write_text("from .base import engine\nA = 1\n")
    (package / "methods" / "b.py").write_text("B = 1\n")
    monkeypatch.setattr(codehash, "ROOT", package)
    codehash._parse.cache_clear()
    try:
        assert codehash.closure("unlearnbench.methods.a") == [
            "unlearnbench.core.lazy", "unlearnbench.methods.a", "unlearnbench.methods.base", "unlearnbench.nn.engine"]
        before_a, before_b = codehash.code_hash("unlearnbench.methods.a"), codehash.code_hash("unlearnbench.methods.b")
        (package / "nn" / "engine.py").write_text('"""other doc"""\n# a comment\nSTEP = 1\n')
        codehash._parse.cache_clear()
        assert codehash.code_hash("unlearnbench.methods.a") == before_a  # docstring and comment only
        (package / "nn" / "engine.py").write_text("STEP = 2\n")
        codehash._parse.cache_clear()
        assert codehash.code_hash("unlearnbench.methods.a") != before_a  # shared code changed: a reruns
        assert codehash.code_hash("unlearnbench.methods.b") == before_b  # b does not use the engine
    finally:
        codehash._parse.cache_clear()


def test_every_method_and_wrapper_hash_covers_base_and_engine():
    from unlearnbench.methods import REGISTRY, WRAPPERS

    for cls in [*REGISTRY.values(), *WRAPPERS.values()]:
        modules = codehash.closure(cls.__module__)
        assert {"unlearnbench.methods.base", "unlearnbench.nn.engine"} <= set(modules), cls.__module__
        others = {c.__module__ for c in [*REGISTRY.values(), *WRAPPERS.values()]} - {cls.__module__}
        assert not others & set(modules), f"{cls.__module__} imports another method: {others & set(modules)}"


def test_jobs_of_one_run_share_a_code_hash_and_runs_of_different_methods_do_not():
    plan = parse(_validated(DEFAULT))
    codes = {run: plan.job(run, "digits", "random")["code"] for run in plan.runs}
    assert codes["finetune"] != codes["uib_finetune"] != codes["sparsity_finetune"]
    assert len(set(codes.values())) == len(codes)
    spec = RunSpec(name="x", method="finetune", setting="standard", knobs={"epochs": 2}, setting_knobs={})
    assert spec.job("digits", "random")["code"] == codes["finetune"]


# ---------------------------------------------------------------------------------------------- inputs

class _RunsCode:
    """A pickle whose loading would run code (writes a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_code_running_checkpoint_is_refused_and_runs_nothing(tmp_path, random_setup):
    import torch

    from unlearnbench.nn.checkpoint import CheckpointError
    from unlearnbench.datasets.experiment import ExperimentData
    from unlearnbench.steps.training import load_model

    marker = tmp_path / "executed"
    evil = tmp_path / "model.pt"
    torch.save({"format": "unlearnbench-checkpoint-v1", "payload": _RunsCode(marker)}, evil)
    with pytest.raises(CheckpointError, match=r"model\.pt: refused to load.*nothing in it was executed"):
        load_model(str(evil), ExperimentData.load(random_setup.data), torch.device("cpu"))
    assert not marker.exists()
    with open(evil, "wb") as f:  # a plain pickle too
        pickle.dump(_RunsCode(marker), f)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_model(str(evil), ExperimentData.load(random_setup.data), torch.device("cpu"))
    assert not marker.exists()


def test_an_epoch_checkpoint_of_another_recipe_is_discarded_with_a_log_line(tmp_path):
    import torch

    from unlearnbench.nn import checkpoint, engine

    x = torch.randint(0, 255, (64, 1, 8, 8), dtype=torch.uint8)
    y = torch.randint(0, 10, (64,))
    lines = []

    def model():
        torch.manual_seed(0)
        from unlearnbench.nn.models import build_model
        return build_model("small_cnn", in_channels=1, n_classes=10, mean=[0.5], std=[0.2], width=4)

    path = tmp_path / "model.pt.epoch"
    cfg = engine.TrainConfig(epochs=2, batch_size=32, lr=0.05)
    engine.train(model(), x, y, cfg, generator=torch.Generator().manual_seed(0), log=lines.append, checkpoint=path,
                 fingerprint=checkpoint.fingerprint(epochs=2))
    assert path.exists()
    history = engine.train(model(), x, y, engine.TrainConfig(epochs=3, batch_size=32, lr=0.05),
                           generator=torch.Generator().manual_seed(0), log=lines.append, checkpoint=path,
                           fingerprint=checkpoint.fingerprint(epochs=3))
    assert any(f"discarding stale epoch checkpoint {path}" in line for line in lines)
    assert [h["epoch"] for h in history] == [1, 2, 3]  # trained from scratch, not resumed at epoch 2


def test_corrupt_bundles_name_the_file(tmp_path):
    from unlearnbench.datasets.experiment import ExperimentData
    from unlearnbench.core.io import read_bundle, write_bundle

    path = tmp_path / "experiment.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(InputFileError, match=r"experiment\.npz: not a readable experiment data"):
        ExperimentData.load(path)
    write_bundle(tmp_path / "ok.npz", {"a": np.arange(3)}, {"k": 1})
    (tmp_path / "ok.json").write_text("{broken")
    with pytest.raises(InputFileError, match=r"ok\.json: not a readable"):
        read_bundle(tmp_path / "ok.npz")


def test_outputs_get_the_users_umask(tmp_path):
    from unlearnbench.core.io import atomic_write_json

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o644


def test_a_scenario_can_run_on_fewer_seeds_and_a_bad_value_names_its_key():
    config = _validated(DEFAULT)
    config["scenarios"]["random"]["seeds"] = 3
    plan = parse(config)
    assert plan.seeds_of("random") == [0, 1, 2] and plan.seeds_of("bias") == list(range(10))
    assert plan.seeds_for("finetune", "random") == [0, 1, 2] and plan.seeds_for("finetune", "bias") == plan.seeds
    config["scenarios"]["random"]["seeds"] = [4, 7]
    assert parse(config).seeds_of("random") == [4, 7]
    # more than the run has (`--config seeds=2` on the default, whose JiT scenarios ask for 3): all of the run's
    # seeds, and the tables' notes say so
    config["scenarios"]["random"]["seeds"] = 11
    capped = parse(config)
    assert capped.seeds_of("random") == list(range(10)) and capped.seed_caps == {"random": (11, 10)}
    assert capped.seed_notes(["bias", "random"])[:-1] == [
        "random: 10 seeds (scenarios.random.seeds asks for 11; this run has 10)"]
    assert capped.seed_notes(["bias", "random"])[-1].startswith("Tuning: as published: influence (3 trials)")
    for bad in (0, [3, 3], [12], "all"):
        config["scenarios"]["random"]["seeds"] = bad
        with pytest.raises(ConfigError, match=r"scenarios\.random\.seeds"):
            parse(config)


def test_the_workflow_has_no_checkpoint():
    """Snakemake (<= 9.27.1) corrupts job groups when the DAG holds a checkpoint: groups grow past their
    group-components cap and keep replaced jobs, so the SLURM profile's batches crash with KeyError (docs/slurm.md).
    The tune stage is an ordinary rule; no rule file may declare a checkpoint or read one."""
    import re

    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        text = path.read_text()
        assert not re.search(r"^\s*checkpoint\s+\w+\s*:", text, re.M), f"{path.name} declares a checkpoint"
        assert "checkpoints." not in text, f"{path.name} reads a checkpoint"


def test_a_model_the_builders_would_refuse_is_refused_at_config_time():
    """A head on a model without a head choice used to pass the config check and fail inside the training job; now
    parse() stops it naming the key, and the builders agree on which architectures have a head choice."""
    from unlearnbench.nn import models
    from unlearnbench.config.plan import HEAD_ARCHS

    config = _validated(DEFAULT)
    name = next(iter(config["datasets"]))
    for model, key in (({"arch": "small_cnn", "width": 8, "head": "reference"}, "model.head"),
                       ({"arch": "resnet18", "width": 8, "head": "compact"}, "model.head")):
        bad = copy.deepcopy(config)
        bad["datasets"][name]["model"] = model
        with pytest.raises(ConfigError, match=rf"datasets\.{name}\.{key}"):
            parse(bad)
    assert set(HEAD_ARCHS) == {a for a in models.ARCHITECTURES if a.startswith("vgg")}


# ---------------------------------------------------------------------------------------------- layers

PACKAGE_ROOT = ROOT / "src" / "unlearnbench"
# layers that stay torch-free at import and below the torch layers: they may not import nn (models, engine, ...),
# methods or steps (the job entry points). config reads the method registry (methods/__init__: knob classes, torch
# imported lazily; the test above checks parsing imports no torch), so only nn and steps are closed to it.
TORCH_HEAVY = {"nn", "methods", "steps"}
TORCH_FREE = {"core": TORCH_HEAVY, "scenarios": TORCH_HEAVY, "config": {"nn", "steps"}}


def _module_imports() -> dict[str, set[str]]:
    """module (dotted, under unlearnbench) -> the modules of the package it imports: every `import` and
    `from ... import` anywhere in its source (function bodies too), relative ones resolved, and lazy_import names."""
    out = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        package = parts[:-1]
        if parts[-1] == "__init__":
            parts = parts[:-1]
            package = parts
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                imported |= {module} | {f"{module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_import" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                imported.add(node.args[0].value)
        out[".".join(parts)] = {m for m in imported if m.split(".")[0] == "unlearnbench"}
    return out


def _layer(module: str) -> str | None:
    """The subpackage a module belongs to (None: the package's own __init__)."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    return parts[1] if (PACKAGE_ROOT / parts[1]).is_dir() else None


def test_every_module_is_in_a_subpackage():
    flat = sorted(p.name for p in PACKAGE_ROOT.glob("*.py") if p.name != "__init__.py")
    assert flat == [], f"modules outside a subpackage: {flat}"


def test_subpackages_import_each_other_without_a_cycle():
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], list[str]] = {}
    for module, imported in _module_imports().items():
        source = _layer(module)
        for target in map(_layer, imported):
            if source and target and target != source:
                edges.setdefault(source, set()).add(target)
        for name in imported:
            if source and _layer(name) not in (None, source):
                where.setdefault((source, _layer(name)), []).append(f"{module} -> {name}")

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for nxt in edges.get(node, ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    cycles = sorted(f"{a} -> {b} ({where[a, b][0]}) and back" for a in edges for b in edges[a] if reaches(b, a))
    assert not cycles, "subpackages import each other in a cycle:\n" + "\n".join(cycles)


def test_torch_free_layers_import_no_torch_layer():
    wrong = sorted(f"{module} imports {name}" for module, imported in _module_imports().items()
                   for name in imported if _layer(name) in TORCH_FREE.get(_layer(module), ()))
    assert not wrong, "\n".join(wrong)
