"""Bias construction (UIB Fig. 2) and forget requests."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from unlearnbench.datasets import colour
from unlearnbench.datasets.experiment import ExperimentData, build_experiment, stratified_split
from unlearnbench.scenarios import ForgetRequest, make_request


def _synthetic_raw(n_per_class=300, n_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = rng.integers(0, 256, size=(len(y), 8, 8), dtype=np.uint8)
    return {"x_train": x, "y_train": y, "x_test": np.zeros((0, 8, 8), np.uint8), "y_test": np.zeros(0, np.int64)}


COLOUR = {"enabled": True, "palette": "tab10", "mode": "background", "bias_strength": 1.0}
SPLIT = {"val_fraction": 0.1, "test_fraction": 0.3}


def test_training_colour_is_a_function_of_the_label():
    arrays, _ = build_experiment(_synthetic_raw(), split=SPLIT, colour=COLOUR, data_seed=0)
    for split in ("train", "val"):
        assert np.array_equal(arrays[f"c_{split}"], arrays[f"y_{split}"])


def test_test_colour_is_independent_of_the_label():
    raw = _synthetic_raw(n_per_class=2000)
    arrays, _ = build_experiment(raw, split=SPLIT, colour=COLOUR, data_seed=0)
    table = np.zeros((10, 10))
    np.add.at(table, (arrays["y_test"], arrays["c_test"]), 1)
    assert chi2_contingency(table).pvalue > 0.01
    # and the same test does detect the training set's dependence
    table_train = np.zeros((10, 10))
    np.add.at(table_train, (arrays["y_train"], arrays["c_train"]), 1)
    assert chi2_contingency(table_train).pvalue < 1e-100


def test_bias_strength_sets_the_share_of_class_coloured_images():
    arrays, _ = build_experiment(_synthetic_raw(n_per_class=1000), split=SPLIT,
                                 colour={**COLOUR, "bias_strength": 0.7}, data_seed=0)
    share = np.mean(arrays["c_train"] == arrays["y_train"])
    # 70% forced + 30% uniform that hit the class colour by chance (1/10)
    assert share == pytest.approx(0.7 + 0.3 * 0.1, abs=0.02)


def test_render_keeps_strokes_and_paints_background():
    gray = np.zeros((2, 4, 4), np.uint8)
    gray[:, 1, 1] = 255
    rgb = colour.render(gray, np.array([0, 3]), colour.TAB10, "background")
    assert rgb.shape == (2, 4, 4, 3)
    assert (rgb[0, 1, 1] == 255).all()
    assert (rgb[1, 0, 0] == colour.TAB10[3]).all()
    fg = colour.render(gray, np.array([0, 3]), colour.TAB10, "foreground")
    assert (fg[1, 1, 1] == colour.TAB10[3]).all() and (fg[1, 0, 0] == 0).all()


def test_bad_palette_names_the_key():
    with pytest.raises(ValueError, match="colour.palette"):
        colour.make_palette([[0, 0, 0]] * 3, n_classes=10)
    with pytest.raises(ValueError, match="colour.palette"):
        colour.make_palette([[1, 2, 3]] * 10, n_classes=10)


def test_stratified_split_takes_the_fraction_of_every_class():
    y = np.repeat(np.arange(5), 100)
    kept, taken = stratified_split(y, 0.2, np.random.default_rng(0))
    assert len(np.intersect1d(kept, taken)) == 0 and len(kept) + len(taken) == len(y)
    assert (np.bincount(y[taken]) == 20).all()


@pytest.fixture(scope="module")
def experiment():
    arrays, manifest = build_experiment(_synthetic_raw(), split=SPLIT, colour=COLOUR, data_seed=0)
    return ExperimentData(arrays, manifest)


def test_random_request_sizes_and_disjointness(experiment, tmp_path):
    request = make_request("random", experiment, {"fraction": 0.1}, data_seed=0)
    n = len(experiment.labels("train"))
    assert len(request.forget_idx) == round(0.1 * n)
    assert len(np.intersect1d(request.forget_idx, request.retain_idx)) == 0
    assert len(request.forget_idx) + len(request.retain_idx) == n
    images, labels = request.oracle_training_set(experiment)
    assert len(labels) == len(request.retain_idx)
    request.save(tmp_path / "r.npz")
    again = ForgetRequest.load(tmp_path / "r.npz")
    assert np.array_equal(again.forget_idx, request.forget_idx)
    assert again.description["n_forget"] == len(request.forget_idx)


def test_bias_request_defines_pattern_points_and_a_decorrelated_oracle(experiment):
    request = make_request("bias", experiment, {"pattern_fraction": 0.1, "oracle": "decorrelated"}, data_seed=0)
    y, c = experiment.labels("train"), experiment.colours("train")
    assert (c[request.forget_idx] == y[request.forget_idx]).all()  # every forget point carries the pattern
    counts = np.bincount(y[request.forget_idx], minlength=10)
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1  # stratified by class
    assert request.references == ["retrain", "retrain_replace"]
    table = np.zeros((10, 10))
    np.add.at(table, (y, request.oracle_colours["retrain"]), 1)
    assert chi2_contingency(table).pvalue > 0.001  # the reported oracle's colours carry no label information
    x_cf, y_cf = request.forget_counterfactual(experiment)
    x_f, y_f = request.forget_set(experiment)
    assert np.array_equal(y_cf, y_f) and x_cf.shape == x_f.shape
    assert not np.array_equal(x_cf, x_f)
    # z̃ = the forget images in the counterfactual colours, which both oracles see in place of ΔD
    assert np.array_equal(x_cf, experiment.images("train", request.forget_idx, request.counterfactual_colours))
    for name in request.references:
        assert np.array_equal(request.oracle_colours[name][request.forget_idx], request.counterfactual_colours)
    # the counterfactual colours are independent of the label: about 1/10 keep the class colour, not all
    assert np.mean(request.counterfactual_colours == y_f) < 0.3


def test_retain_set_is_the_data_the_baseline_saw(experiment):
    """D_r is what the deployed model was trained on (colours unchanged), never the oracle's re-coloured images."""
    request = make_request("bias", experiment, {"pattern_fraction": 0.1}, data_seed=0)
    x_r, y_r = request.retain_set(experiment)
    assert np.array_equal(x_r, experiment.images("train", request.retain_idx))
    assert np.array_equal(y_r, experiment.labels("train")[request.retain_idx])
    recoloured = experiment.images("train", request.retain_idx,
                                   request.oracle_colours["retrain"][request.retain_idx])
    assert not np.array_equal(x_r, recoloured)  # the oracle's training set differs from D_r
    x_o, y_o = request.oracle_training_set(experiment)
    assert len(y_o) == len(experiment.labels("train"))  # every image, re-coloured
    assert np.array_equal(x_o[request.retain_idx], recoloured)


def test_second_reference_is_warneckes_replacement_oracle(experiment, tmp_path):
    request = make_request("bias", experiment, {"pattern_fraction": 0.1}, data_seed=0)
    c = experiment.colours("train")
    replace = request.oracle_colours["retrain_replace"]
    # only ΔD re-coloured (to z̃'s colours); D_r in its training colours: retraining after the replacement
    assert np.array_equal(replace[request.retain_idx], c[request.retain_idx])
    assert np.array_equal(replace[request.forget_idx], request.counterfactual_colours)
    x_o, _ = request.oracle_training_set(experiment, "retrain_replace")
    assert np.array_equal(x_o[request.retain_idx], request.retain_set(experiment)[0])
    assert not np.array_equal(replace, request.oracle_colours["retrain"])  # the two references differ
    with pytest.raises(ValueError, match="no reference oracle 'retrain_other'"):
        request.oracle_training_set(experiment, "retrain_other")
    # saved and loaded with every reference
    request.save(tmp_path / "b.npz")
    again = ForgetRequest.load(tmp_path / "b.npz")
    assert again.references == ["retrain", "retrain_replace"]
    assert all(np.array_equal(again.oracle_colours[k], request.oracle_colours[k]) for k in request.references)
    assert np.array_equal(again.counterfactual_colours, request.counterfactual_colours)


def test_bias_reference_options(experiment):
    only = make_request("bias", experiment, {"second_reference": False}, data_seed=0)
    assert only.references == ["retrain"] and set(only.oracle_colours) == {"retrain"}
    swapped = make_request("bias", experiment, {"oracle": "replace_forget"}, data_seed=0)
    assert swapped.references == ["retrain", "retrain_decorrelated"]
    c = experiment.colours("train")
    assert np.array_equal(swapped.oracle_colours["retrain"][swapped.retain_idx], c[swapped.retain_idx])


def test_requests_are_deterministic(experiment):
    a = make_request("random", experiment, {"fraction": 0.1}, data_seed=3)
    b = make_request("random", experiment, {"fraction": 0.1}, data_seed=3)
    c = make_request("random", experiment, {"fraction": 0.1}, data_seed=4)
    assert np.array_equal(a.forget_idx, b.forget_idx) and not np.array_equal(a.forget_idx, c.forget_idx)


def test_train_and_test_size_take_stratified_subsets_and_absent_keys_change_nothing():
    raw = _synthetic_raw()
    full, _ = build_experiment(raw, split=SPLIT, colour=COLOUR, data_seed=0)
    same, _ = build_experiment(raw, split={**SPLIT, "train_size": None, "test_size": None}, colour=COLOUR,
                               data_seed=0)
    assert all(np.array_equal(full[k], same[k]) for k in full)
    n_train = len(full["y_train"]) + len(full["y_val"])
    small, _ = build_experiment(raw, split={**SPLIT, "train_size": n_train // 2, "test_size": 100},
                                colour=COLOUR, data_seed=0)
    assert len(small["y_train"]) + len(small["y_val"]) == pytest.approx(n_train // 2, abs=10)
    assert len(small["y_test"]) == pytest.approx(100, abs=10)
    for split in ("train", "test"):  # stratified: every class keeps its share
        shares = np.bincount(small[f"y_{split}"]) / len(small[f"y_{split}"])
        assert np.allclose(shares, np.bincount(full[f"y_{split}"]) / len(full[f"y_{split}"]), atol=0.02)
