"""Forget scenarios full_class, sub_class, random_n; coarse labels (CIFAR-20); the patch/border pattern for RGB
sources; the scenario evaluation sets; the shipped configs; Fashion-MNIST from Debian's mirror end to end."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import chi2_contingency

from unlearnbench.datasets import colour
from unlearnbench.datasets.experiment import ExperimentData, build_experiment
from unlearnbench.scenarios import ForgetRequest, make_request

ROOT = Path(__file__).resolve().parents[1]
SPLIT = {"val_fraction": 0.1, "test_fraction": 0.25}
NO_COLOUR = {"enabled": False}
PATCH = {"enabled": True, "palette": "tab10", "mode": "patch", "bias_strength": 1.0, "patch_size": None}
FASHION_MIRROR = Path("/usr/share/datasets/fashion-mnist")


def _raw_rgb(n_train_per_class=60, n_test_per_class=40, n_classes=10, size=8, seed=0):
    rng = np.random.default_rng(seed)
    y_train = np.repeat(np.arange(n_classes), n_train_per_class)
    y_test = np.repeat(np.arange(n_classes), n_test_per_class)
    return {
        "x_train": rng.integers(0, 256, (len(y_train), size, size, 3), dtype=np.uint8), "y_train": y_train,
        "x_test": rng.integers(0, 256, (len(y_test), size, size, 3), dtype=np.uint8), "y_test": y_test,
        "manifest": {"class_names": [f"c{c}" for c in range(n_classes)]},
    }


def _raw_cifar100_like(per_fine_train=12, per_fine_test=4, seed=0):
    """CIFAR-100's layout: 100 fine classes, 5 per superclass (the real mapping differs; 69 -> 13 here)."""
    rng = np.random.default_rng(seed)
    f_train = np.repeat(np.arange(100), per_fine_train)
    f_test = np.repeat(np.arange(100), per_fine_test)
    return {
        "x_train": rng.integers(0, 256, (len(f_train), 4, 4, 3), dtype=np.uint8), "y_train": f_train,
        "x_test": rng.integers(0, 256, (len(f_test), 4, 4, 3), dtype=np.uint8), "y_test": f_test,
        "y_train_coarse": f_train // 5, "y_test_coarse": f_test // 5,
        "manifest": {"class_names": [f"fine{c}" for c in range(100)],
                     "coarse_class_names": [f"coarse{c}" for c in range(20)]},
    }


def _data(raw, colour_cfg=NO_COLOUR, labels="fine", data_seed=0) -> ExperimentData:
    return ExperimentData(*build_experiment(raw, split=SPLIT, colour=colour_cfg, data_seed=data_seed, labels=labels))


def _check_partition(request: ForgetRequest, data: ExperimentData):
    n = len(data.labels("train"))
    assert len(np.intersect1d(request.forget_idx, request.retain_idx)) == 0
    assert np.array_equal(np.union1d(request.forget_idx, request.retain_idx), np.arange(n))
    assert request.description["n_forget"] + request.description["n_retain"] == n
    if request.test_forget_idx is not None:
        n_test = len(data.labels("test"))
        assert len(np.intersect1d(request.test_forget_idx, request.test_retain_idx)) == 0
        assert np.array_equal(np.union1d(request.test_forget_idx, request.test_retain_idx), np.arange(n_test))


# ---------------------------------------------------------------------------------------------- full_class

@pytest.mark.parametrize("forget_class", [0, 3, 9])
def test_full_class_forgets_exactly_one_class(forget_class):
    data = _data(_raw_rgb())
    req = make_request("full_class", data, {"forget_class": forget_class}, 0)
    y, y_test = data.labels("train"), data.labels("test")
    _check_partition(req, data)
    assert np.array_equal(req.forget_idx, np.flatnonzero(y == forget_class))
    assert (y[req.retain_idx] != forget_class).all()
    # evaluation sets: forget-class test and retain-class test
    assert np.array_equal(req.test_forget_idx, np.flatnonzero(y_test == forget_class))
    assert (y_test[req.test_retain_idx] != forget_class).all()
    assert req.description["forget_class"] == forget_class
    assert req.description["forget_class_name"] == f"c{forget_class}"
    assert req.description["n_test_forget"] == 40
    counts = req.description["forget_class_counts"]
    assert counts[forget_class] == len(req.forget_idx) and sum(counts) == len(req.forget_idx)
    # the oracle never sees the class
    _, oracle_y = req.oracle_training_set(data)
    assert forget_class not in set(oracle_y.tolist())


def test_full_class_rejects_unknown_class():
    with pytest.raises(ValueError, match="forget_class=10"):
        make_request("full_class", _data(_raw_rgb()), {"forget_class": 10}, 0)


def test_full_class_on_cifar100_rocket():
    data = _data(_raw_cifar100_like())
    req = make_request("full_class", data, {"forget_class": 69}, 0)
    _check_partition(req, data)
    assert set(data.labels("train")[req.forget_idx].tolist()) == {69}
    assert req.description["forget_class_name"] == "fine69"
    assert data.n_classes == 100


# ---------------------------------------------------------------------------------------------- sub_class

def test_coarse_labels_train_on_superclasses_and_keep_fine_labels():
    raw = _raw_cifar100_like()
    data = _data(raw, labels="coarse")
    assert data.n_classes == 20
    assert data.manifest["labels"] == "coarse"
    assert data.manifest["class_names"] == [f"coarse{c}" for c in range(20)]
    assert data.manifest["fine_class_names"][69] == "fine69"
    for split in ("train", "val", "test"):
        y, f = data.labels(split), data.arrays[f"f_{split}"]
        assert len(y) == len(f)
        assert np.array_equal(y, f // 5)  # every image keeps its own fine label next to its coarse one
    # same split as with fine labels? no requirement; but sizes add up
    assert sum(data.manifest["sizes"].values()) == len(raw["y_train"]) + len(raw["y_test"])


def test_sub_class_keeps_coarse_labels_and_forgets_exactly_the_fine_class():
    data = _data(_raw_cifar100_like(), labels="coarse")
    req = make_request("sub_class", data, {"fine_class": 69}, 0)
    _check_partition(req, data)
    f_train, f_test = data.arrays["f_train"], data.arrays["f_test"]
    assert np.array_equal(req.forget_idx, np.flatnonzero(f_train == 69))
    assert (f_train[req.retain_idx] != 69).all()
    # labels stay coarse: the forget points carry their superclass, which other fine classes keep
    forget_images, forget_labels = req.forget_set(data)
    assert set(forget_labels.tolist()) == {69 // 5}
    retain_labels = data.labels("train")[req.retain_idx]
    assert (retain_labels == 69 // 5).sum() > 0
    assert req.description["coarse_class"] == 13 and req.description["fine_class_name"] == "fine69"
    # evaluation sets: the fine class's test images vs every other test image
    assert np.array_equal(req.test_forget_idx, np.flatnonzero(f_test == 69))
    assert (f_test[req.test_retain_idx] != 69).all()
    assert set(req.test_forget_set(data)[1].tolist()) == {13}


def test_sub_class_needs_coarse_labels():
    with pytest.raises(ValueError, match="labels: coarse"):
        make_request("sub_class", _data(_raw_cifar100_like()), {"fine_class": 69}, 0)
    with pytest.raises(ValueError, match="coarse labels"):
        _data(_raw_rgb(), labels="coarse")


# ---------------------------------------------------------------------------------------------- random_n

@pytest.mark.parametrize("n_forget", [1, 83, 100, 250])
def test_random_n_forgets_exactly_n(n_forget):
    data = _data(_raw_rgb())
    req = make_request("random_n", data, {"n": n_forget}, 0)
    _check_partition(req, data)
    assert len(req.forget_idx) == n_forget == len(np.unique(req.forget_idx))
    assert req.test_forget_idx is None and req.description["n_forget"] == n_forget
    again = make_request("random_n", data, {"n": n_forget}, 0)
    assert np.array_equal(req.forget_idx, again.forget_idx)  # fixed by data_seed
    other = make_request("random_n", data, {"n": n_forget}, 1)
    assert n_forget < 50 or not np.array_equal(req.forget_idx, other.forget_idx)


def test_random_n_rejects_n_beyond_the_training_set():
    data = _data(_raw_rgb())
    with pytest.raises(ValueError, match="random_n.n"):
        make_request("random_n", data, {"n": len(data.labels("train"))}, 0)


# ---------------------------------------------------------------------------------------------- requests on disk, evaluation

def test_class_request_round_trips_with_its_evaluation_sets(tmp_path):
    data = _data(_raw_rgb())
    req = make_request("full_class", data, {"forget_class": 2}, 0)
    req.save(tmp_path / "full_class.npz")
    back = ForgetRequest.load(tmp_path / "full_class.npz")
    assert np.array_equal(back.test_forget_idx, req.test_forget_idx)
    assert np.array_equal(back.test_retain_idx, req.test_retain_idx)
    assert back.description["forget_class"] == 2
    rand = make_request("random_n", data, {"n": 10}, 0)
    rand.save(tmp_path / "random_n.npz")
    assert ForgetRequest.load(tmp_path / "random_n.npz").test_forget_idx is None


def test_model_outputs_and_metrics_cover_the_class_evaluation_sets():
    import torch
    from unlearnbench.evaluation.evaluate import compute_metrics, model_outputs
    from unlearnbench.nn.models import build_model

    data = _data(_raw_rgb())
    m = data.manifest
    torch.manual_seed(0)
    model = build_model("small_cnn", in_channels=3, n_classes=10, mean=m["mean"], std=m["std"], width=4)
    req = make_request("full_class", data, {"forget_class": 1}, 0)
    out = model_outputs(model, data, req, torch.device("cpu"))
    assert out["test_forget_logits"].shape == (40, 10) and (out["test_forget_labels"] == 1).all()
    assert out["test_retain_logits"].shape == (360, 10) and (out["test_retain_labels"] != 1).all()
    metrics = compute_metrics(out, 10, seed=0)
    pred = out["test_forget_logits"].argmax(1)
    assert metrics["forget_class_test_acc"] == pytest.approx(np.mean(pred == 1))
    assert 0.0 <= metrics["retain_class_test_acc"] <= 1.0
    out_random = model_outputs(model, data, make_request("random_n", data, {"n": 20}, 0), torch.device("cpu"))
    assert "test_forget_logits" not in out_random
    assert "forget_class_test_acc" not in compute_metrics(out_random, 10, seed=0)


# ---------------------------------------------------------------------------------------------- patch / border

def test_patch_mode_keeps_rgb_shape_and_paints_the_class_colour():
    raw = _raw_rgb(size=32)
    data = _data(raw, PATCH)
    assert data.manifest["colour"]["patch_size"] == 4 and data.manifest["channels"] == 3
    x, y, c = data.arrays["x_train"], data.labels("train"), data.colours("train")
    assert x.shape[1:] == (32, 32, 3)
    img = data.images("train")
    assert img.shape == x.shape and img.dtype == np.uint8
    assert np.array_equal(c, y)  # bias_strength 1: training colour is the label
    assert (img[:, :4, :4] == colour.TAB10[y][:, None, None, :]).all()
    mask = np.ones((32, 32), bool)
    mask[:4, :4] = False
    assert np.array_equal(img[:, mask], x[:, mask])  # everything outside the patch untouched
    # re-colouring one image (as the bias oracle does) changes only its patch
    other = data.images("train", np.array([0]), np.array([(y[0] + 1) % 10]))
    assert (other[0, :4, :4] == colour.TAB10[(y[0] + 1) % 10]).all()


def test_patch_train_colour_follows_label_test_colour_is_independent():
    raw = _raw_rgb(n_train_per_class=300, n_test_per_class=1000, size=8)
    data = _data(raw, PATCH)
    table = np.zeros((10, 10))
    np.add.at(table, (data.labels("test"), data.colours("test")), 1)
    assert chi2_contingency(table).pvalue > 0.01
    train = np.zeros((10, 10))
    np.add.at(train, (data.labels("train"), data.colours("train")), 1)
    assert chi2_contingency(train).pvalue < 1e-100
    assert np.array_equal(data.colours("val"), data.labels("val"))


def test_border_mode_and_patch_size_knob():
    raw = _raw_rgb(size=16)
    data = _data(raw, {**PATCH, "mode": "border", "patch_size": 3})
    img, y = data.images("train"), data.labels("train")
    col = colour.TAB10[y][:, None, :]
    assert data.manifest["colour"]["patch_size"] == 3
    for edge in (img[:, :3].reshape(len(y), -1, 3), img[:, -3:].reshape(len(y), -1, 3),
                 img[:, :, :3].reshape(len(y), -1, 3), img[:, :, -3:].reshape(len(y), -1, 3)):
        assert (edge == col).all()
    assert np.array_equal(img[:, 3:-3, 3:-3], data.arrays["x_train"][:, 3:-3, 3:-3])
    assert ExperimentData(*build_experiment(raw, split=SPLIT, colour={**PATCH, "mode": "border"},
                                            data_seed=0)).manifest["colour"]["patch_size"] == 2
    with pytest.raises(ValueError, match="patch_size"):
        _data(raw, {**PATCH, "patch_size": 17})


def test_patch_mode_on_grayscale_and_background_on_rgb():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 20)
    gray = {"x_train": rng.integers(0, 256, (200, 8, 8), dtype=np.uint8), "y_train": y,
            "x_test": np.zeros((0, 8, 8), np.uint8), "y_test": np.zeros(0, np.int64)}
    img = _data(gray, PATCH).images("test")
    assert img.shape[1:] == (8, 8, 3)
    with pytest.raises(ValueError, match="patch or border"):
        _data(_raw_rgb(), {**PATCH, "mode": "background"})


def test_bias_scenario_works_unchanged_on_the_patch_pattern():
    data = _data(_raw_rgb(n_train_per_class=100), PATCH)
    req = make_request("bias", data, {"pattern_fraction": 0.1, "oracle": "decorrelated"}, 0)
    _check_partition(req, data)
    x_cf, y_cf = req.forget_counterfactual(data)
    assert x_cf.shape[1:] == (8, 8, 3)
    cf_colours = req.counterfactual_colours
    assert (x_cf[:, :4, :4] == colour.TAB10[cf_colours][:, None, None, :]).all()
    x_f, _ = req.forget_set(data)
    assert (x_f[:, :4, :4] == colour.TAB10[y_cf][:, None, None, :]).all()


def _recovered_colours(augmented: np.ndarray) -> np.ndarray:
    """For each (N, 3, H, W) uint8 image, the palette colour covering the most pixels exactly (-1 if none does)."""
    pixels = augmented.transpose(0, 2, 3, 1).reshape(len(augmented), -1, 3)
    counts = np.stack([(pixels == c).all(-1).sum(1) for c in colour.TAB10], axis=1)
    return np.where(counts.max(1) > 0, counts.argmax(1), -1)


@pytest.mark.timeout(120)
def test_border_pattern_survives_the_training_augmentation_and_the_corner_patch_does_not():
    """CIFAR training augments (engine.random_crop_flip: zero padding H/8 = 4 px, random crop, horizontal flip). A
    2-px class-coloured border keeps its colour in every augmented training image (the crop shifts by at most 4 px,
    so one full horizontal and one vertical strip stay in view; the flip maps the frame onto itself). A 4-px corner
    patch is cut off whenever the crop shifts it out, so the pattern is gone from part of the images."""
    import torch

    from unlearnbench.nn import engine

    raw = _raw_rgb(n_train_per_class=40, size=32)
    generator = torch.Generator().manual_seed(0)
    for mode, survives in (("border", True), ("patch", False)):
        data = _data(raw, {**PATCH, "mode": mode, "patch_size": 2 if mode == "border" else 4})
        x = engine.to_device(data.images("train"), None, torch.device("cpu"))
        y = data.labels("train")
        lost = 0
        for _ in range(5):  # five epochs of augmentation
            out = engine.random_crop_flip(x, generator, pad=max(1, x.shape[-1] // 8), flip=True).numpy()
            lost += int((_recovered_colours(out) != y).sum())
        assert (lost == 0) == survives, (mode, lost)
    assert lost > 0.1 * 5 * len(y)  # the corner patch: gone from a large share of augmented images


# ---------------------------------------------------------------------------------------------- configs

def _validated(path: Path, overrides: dict | None = None) -> dict:
    from snakemake.utils import validate
    from unlearnbench.config.plan import check_config

    config = yaml.safe_load(path.read_text())
    config.update(overrides or {})
    validate(config, str(ROOT / "config" / "schema.yaml"))
    check_config(config)
    return config


@pytest.mark.parametrize("name", ["fashion_mnist.yaml", "paper_jit.yaml", "paper_uib.yaml", "uib_fashion_mnist.yaml",
                                  "uib_digits.yaml", "uib_bias_strength.yaml"])
def test_shipped_configs_validate(name):
    from unlearnbench.scenarios import REGISTRY

    config = _validated(ROOT / "config" / name)
    assert {(spec or {}).get("type", s) for s, spec in config["scenarios"].items()} <= set(REGISTRY)


def test_paper_jit_config_matches_the_paper():
    config = _validated(ROOT / "config" / "paper_jit.yaml")
    assert config["scenarios"]["full_class"]["forget_class"] == 69
    assert config["scenarios"]["sub_class"]["fine_class"] == 69
    assert config["scenarios"]["random_n"]["n"] == 100
    assert config["datasets"]["cifar20"]["labels"] == "coarse"
    assert all(ds["train"]["lr"] == 0.1 and ds["train"]["schedule"] == "onecycle"
               for ds in config["datasets"].values())


def test_sub_class_on_fine_labels_is_a_config_error():
    from unlearnbench.methods.base import ConfigError

    config = yaml.safe_load((ROOT / "config" / "paper_jit.yaml").read_text())
    config["datasets"]["cifar20"]["labels"] = "fine"
    with pytest.raises(ConfigError, match=r"datasets\.cifar20\.labels"):
        _validated_dict(config)
    config = yaml.safe_load((ROOT / "config" / "paper_jit.yaml").read_text())
    config["datasets"]["cifar10"]["labels"] = "coarse"
    with pytest.raises(ConfigError, match=r"datasets\.cifar10\.labels"):
        _validated_dict(config)


def _validated_dict(config: dict) -> None:
    from snakemake.utils import validate
    from unlearnbench.config.plan import check_config

    validate(config, str(ROOT / "config" / "schema.yaml"))
    check_config(config)


# ---------------------------------------------------------------------------------------------- Fashion-MNIST end to end

@pytest.mark.skipif(not FASHION_MIRROR.is_dir(),
                    reason=f"{FASHION_MIRROR} missing: apt-get install dataset-fashion-mnist")
@pytest.mark.skipif(shutil.which("snakemake") is None and not (Path(sys.executable).parent / "snakemake").exists(),
                    reason="snakemake not installed")
@pytest.mark.slow
def test_fashion_mnist_data_stage_from_the_debian_mirror(tmp_path):
    """The data stage of config/fashion_mnist.yaml on the real Debian files: coloured Fashion-MNIST and every
    forget request. (The full workflow is measured in docs/datasets.md; too slow for CI on 2 cores.)"""
    results = tmp_path / "results"
    snakemake = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    targets = [f"{results}/fashion_c/data/experiment.npz", f"{results}/fashion_c/requests/bias.npz"]
    targets += [f"{results}/fashion/requests/{s}.npz" for s in ("random", "random_n", "full_class")]
    cmd = ["timeout", "600", snakemake, "--configfile", str(ROOT / "config" / "fashion_mnist.yaml"),
           "--cores", "1", "--directory", str(tmp_path), "--snakefile", str(ROOT / "Snakefile"),
           "--config", "seeds=1", f"results={results}", "--", *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env={**os.environ})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    data = ExperimentData.load(results / "fashion_c/data/experiment.npz")
    assert data.manifest["sizes"] == {"train": 54000, "val": 6000, "test": 10000}
    assert data.manifest["colour"]["mode"] == "background"
    assert np.array_equal(data.colours("train"), data.labels("train"))
    table = np.zeros((10, 10))
    np.add.at(table, (data.labels("test"), data.colours("test")), 1)
    assert chi2_contingency(table).pvalue > 0.001
    assert data.images("test", np.arange(5)).shape == (5, 28, 28, 3)

    plain = ExperimentData.load(results / "fashion/data/experiment.npz")
    assert not plain.coloured
    bias = ForgetRequest.load(results / "fashion_c/requests/bias.npz")
    assert bias.description["n_forget"] == 5400  # 10% of the 54,000 pattern points, stratified
    rand = ForgetRequest.load(results / "fashion/requests/random.npz")
    assert rand.description["n_forget"] == 5400
    assert len(ForgetRequest.load(results / "fashion/requests/random_n.npz").forget_idx) == 100
    full = ForgetRequest.load(results / "fashion/requests/full_class.npz")
    assert full.description["forget_class_name"] == "T-shirt/top"
    assert len(full.forget_idx) == 5400 and len(full.test_forget_idx) == 1000
    for req in (bias, rand, full):
        _check_partition(req, plain)
