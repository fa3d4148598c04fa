"""Shared fixtures: a tiny real setup (scikit-learn digits, small CNN) trained once per test session."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
UIB_SCENARIOS = ("bias", "random")
INFLUENCE_ACTING = {"scale": 50.0, "damping": 0.02, "depth": 100}  # effective ridge λ = 1, converged


def uib_part(config: dict) -> dict:
    """The UIB part of the embedded default (its digits_c / bias and digits / random experiments and the runs on
    them; no JiT datasets, JiT artifacts, Xu & Strohmer stage, population stage or tuning, and IF at fixed acting knobs in place of
    the damping the tune stage would choose): what the workflow tests run at 3 seeds,
    since the whole default at 3 seeds would take most of the suite's time (the JiT, tuning and Xu & Strohmer
    stages have their own workflow tests)."""
    config = copy.deepcopy(config)
    config["datasets"] = {name: {**ds, "scenarios": [s for s in ds["scenarios"] if s in UIB_SCENARIOS]}
                          for name, ds in config["datasets"].items()
                          if any(s in UIB_SCENARIOS for s in ds["scenarios"])}
    config["scenarios"] = {name: spec for name, spec in config["scenarios"].items() if name in UIB_SCENARIOS}
    methods = {}
    for run, spec in config["methods"].items():
        spec = {k: v for k, v in spec.items() if k not in ("tune", "sweep", "sweep_list", "sweep_seeds")}
        if "scenarios" in spec:
            spec["scenarios"] = [s for s in spec["scenarios"] if s in UIB_SCENARIOS]
            if not spec["scenarios"]:
                continue
        spec["by_scenario"] = {k: v for k, v in (spec.get("by_scenario") or {}).items() if k in UIB_SCENARIOS}
        if not spec["by_scenario"]:
            del spec["by_scenario"]
        if spec["method"] == "influence":  # its damping is tuned in the default; here the acting knobs of test_methods
            spec.update(INFLUENCE_ACTING)
        methods[run] = spec
    config["methods"] = methods
    config.pop("xs", None)
    config.pop("artifacts", None)
    config.pop("population", None)  # the population stage has its own workflow test (test_population_workflow.py)
    return config


UIB_DEFAULT = uib_part(DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def default_config() -> dict:
    return copy.deepcopy(DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def digits_source(tmp_path_factory) -> Path:
    from unlearnbench.datasets import prepare_dataset

    out = tmp_path_factory.mktemp("sources") / "digits"
    return prepare_dataset("digits", out, download_dir=out / "downloads")


def job_spec(method: str, knobs: dict | None = None, run: str | None = None, setting: str = "standard",
             setting_knobs: dict | None = None) -> dict:
    """What the workflow hands an unlearning job (config.RunSpec.job), for a run configured inline."""
    from unlearnbench.config.plan import RunSpec

    return RunSpec(name=run or method, method=method, setting=setting, knobs=dict(knobs or {}),
                   setting_knobs=dict(setting_knobs or {})).job("d", "s")


class Setup:
    """Experiment data, request, baseline and retrain oracle for one (dataset, scenario)."""

    def __init__(self, root: Path, source: Path, dataset_cfg: dict, scenario: str, options: dict):
        from unlearnbench.steps import training
        from unlearnbench.datasets.experiment import prepare_experiment
        from unlearnbench.scenarios import prepare_request

        self.root, self.cfg, self.scenario = root, dataset_cfg, scenario
        self.data = root / "experiment.npz"
        self.request = root / f"{scenario}.npz"
        self.baseline = root / "baseline.pt"
        self.oracle = root / "oracle.pt"
        self.training = {"model": dataset_cfg["model"], "train": dataset_cfg["train"]}
        prepare_experiment(source=str(source), experiment=str(self.data), manifest=str(self.data.with_suffix(".json")),
                           dataset=dataset_cfg, data_seed=0)
        prepare_request(experiment=str(self.data), request=str(self.request),
                        definition=str(self.request.with_suffix(".json")), scenario=scenario,
                        options={"type": scenario, **options}, data_seed=0)
        training.train_baseline(experiment=str(self.data), model=str(self.baseline), training=self.training, seed=0,
                                device="cpu", threads=1, log=str(root / "log"))
        training.train_oracle(experiment=str(self.data), request=str(self.request), model=str(self.oracle),
                              run=str(root / "oracle.json"), outputs=str(root / "oracle_outputs.npz"),
                              training=self.training, identity={"dataset": "d", "scenario": scenario, "seed": 0},
                              seed=0, device="cpu", threads=1, log=str(root / "log"))

    def outputs(self, model_path: Path, tag: str) -> dict:
        import numpy as np
        from unlearnbench.steps import unlearning

        npz = self.root / f"{tag}.npz"
        unlearning.evaluate_original(experiment=str(self.data), request=str(self.request), baseline=str(model_path),
                                     run=str(self.root / f"{tag}.json"), outputs=str(npz),
                                     identity={"dataset": "d", "scenario": self.scenario, "seed": 0}, device="cpu",
                                     threads=1, log=str(self.root / "log"))
        with np.load(npz) as z:
            return {k: z[k] for k in z.files}

    def run_job(self, method: str, knobs: dict, tag: str, setting: str = "standard",
                setting_knobs: dict | None = None, start: Path | None = None) -> dict:
        """One unlearning job as the workflow runs it; returns its info record (run.json `info`)."""
        from unlearnbench.steps import unlearning

        return unlearning.run_unlearning(
            experiment=str(self.data), request=str(self.request), start=str(start or self.baseline),
            model=str(self.root / f"{tag}.pt"), run=str(self.root / f"{tag}.json"),
            outputs=str(self.root / f"{tag}.npz"), spec=job_spec(method, knobs, tag, setting, setting_knobs),
            identity={"dataset": "d", "scenario": self.scenario, "seed": 0}, seed=0, device="cpu", threads=1,
            log=str(self.root / "log"))

    def run(self, method: str, knobs: dict, tag: str, **kwargs) -> dict:
        """One unlearning job; returns its per-sample outputs."""
        import numpy as np

        self.run_job(method, knobs, tag, **kwargs)
        with np.load(self.root / f"{tag}.npz") as z:
            return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def random_setup(tmp_path_factory, digits_source, default_config) -> Setup:
    cfg = _defaults(default_config["datasets"]["digits"])
    return Setup(tmp_path_factory.mktemp("random"), digits_source, cfg, "random", {"fraction": 0.1})


@pytest.fixture(scope="session")
def bias_setup(tmp_path_factory, digits_source, default_config) -> Setup:
    cfg = _defaults(default_config["datasets"]["digits_c"])
    return Setup(tmp_path_factory.mktemp("bias"), digits_source, cfg, "bias",
                 {"pattern_fraction": 0.1, "oracle": "decorrelated"})


@pytest.fixture(scope="session")
def full_class_setup(tmp_path_factory, digits_source, default_config) -> Setup:
    """Digits, small CNN, forget every training image of class 3 (JiT's full-class scenario at CPU scale)."""
    cfg = _defaults(default_config["datasets"]["digits"])
    return Setup(tmp_path_factory.mktemp("full_class"), digits_source, cfg, "full_class", {"forget_class": 3})


def _defaults(dataset_cfg: dict) -> dict:
    """A dataset entry with the schema's defaults filled in (as the workflow sees it)."""
    from snakemake.utils import validate

    config = {"datasets": {"d": copy.deepcopy(dataset_cfg)}, "scenarios": {"random": {}}, "methods": {"x": {"method": "jit"}}}
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config["datasets"]["d"]
