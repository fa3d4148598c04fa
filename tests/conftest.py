"""Shared fixtures: a tiny real setup (scikit-learn digits, small CNN) trained once per test session."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.fixture(scope="session")
def default_config() -> dict:
    return copy.deepcopy(DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def digits_source(tmp_path_factory) -> Path:
    from unlearnbench.datasets import prepare_dataset

    out = tmp_path_factory.mktemp("sources") / "digits"
    return prepare_dataset("digits", out, download_dir=out / "downloads")


class Setup:
    """Experiment data, request, baseline and retrain oracle for one (dataset, scenario)."""

    def __init__(self, root: Path, source: Path, dataset_cfg: dict, scenario: str, options: dict):
        from unlearnbench import runner
        from unlearnbench.data import prepare_experiment, prepare_request

        self.root, self.cfg, self.scenario = root, dataset_cfg, scenario
        self.data = root / "experiment.npz"
        self.request = root / f"{scenario}.npz"
        self.baseline = root / "baseline.pt"
        self.oracle = root / "oracle.pt"
        prepare_experiment(str(source), str(self.data), dataset_cfg, 0)
        prepare_request(str(self.data), scenario, options, 0, str(self.request))
        runner.train_model(str(self.data), None, str(self.baseline), dataset_cfg, 0, "cpu", 1, str(root / "log"))
        runner.train_model(str(self.data), str(self.request), str(self.oracle), dataset_cfg, 0, "cpu", 1,
                           str(root / "log"))

    def outputs(self, model_path: Path, tag: str) -> dict:
        import numpy as np
        from unlearnbench import runner

        npz = self.root / f"{tag}.npz"
        runner.evaluate_checkpoint(str(self.data), str(self.request), str(model_path), 0, "cpu", 1,
                                   str(self.root / f"{tag}.json"), str(npz), str(self.root / "log"), False)
        with np.load(npz) as z:
            return {k: z[k] for k in z.files}

    def run(self, method: str, knobs: dict, tag: str) -> dict:
        import numpy as np
        from unlearnbench import runner

        npz = self.root / f"{tag}.npz"
        runner.run_unlearning(str(self.data), str(self.request), str(self.baseline), tag, method, knobs, 0, "cpu",
                              1, str(self.root / f"{tag}.pt"), str(self.root / f"{tag}.json"), str(npz),
                              str(self.root / "log"))
        with np.load(npz) as z:
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


def _defaults(dataset_cfg: dict) -> dict:
    """A dataset entry with the schema's defaults filled in (as the workflow sees it)."""
    from snakemake.utils import validate

    config = {"datasets": {"d": copy.deepcopy(dataset_cfg)}, "scenarios": {"random": {}}, "methods": {"x": {"method": "jit"}}}
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config["datasets"]["d"]
