"""JiT's benchmark methods (Foster et al. 2025): JiT's official update by hand, the comparison methods (AMN, BT, SSD,
UNSIR, BDSH, GKT, EMMN) on a tiny full-class setup (digits, small CNN, class 3), zero-shot enforced, scenario limits."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from test_conformance import FAST  # the one table of fast knobs
from unlearnbench.evaluation import evaluate
from unlearnbench.config.plan import parse
from unlearnbench.core.errors import ConfigError
from unlearnbench.methods import (DATA_KINDS, REGISTRY, UndeclaredReadError, UnlearnContext, UnlearnData, build_method,
                                  zero_shot)

pytestmark = pytest.mark.timeout(600)

NEW_METHODS = ["amnesiac", "bad_teacher", "ssd", "unsir", "boundary_shrink", "gkt", "emmn"]
ZERO_SHOT = {"jit", "boundary_shrink", "gkt", "emmn"}  # JiT's tables mark exactly these (and JiT) ZS among its rows


def _tiny_linear():
    """A Classifier whose features are the flattened normalised pixels and whose head is Linear(4, 3)."""
    from unlearnbench.nn.models import Classifier, Normalize

    torch.manual_seed(0)
    return Classifier(Normalize([0.5], [0.25]), torch.nn.Flatten(), torch.nn.Linear(4, 3))


X_TINY = torch.tensor([[[[0, 100], [200, 255]]], [[[30, 60], [90, 120]]], [[[255, 0], [128, 64]]]], dtype=torch.uint8)


def _ctx(seed=5, **kw):
    return UnlearnContext(torch.device("cpu"), torch.Generator().manual_seed(seed), log=lambda s: None, **kw)


# ------------------------------------------------------------------------------------------- JiT: official form

def test_jit_default_loss_and_updates_are_the_official_form_by_hand():
    """Default knobs = the authors' lipschitz.py: per batch, loss = (1/N) Σ_j Σ_i ‖f(x_i) − f(x̃_ij)‖ / ‖x_i − x̃_ij‖
    with x̃ = clamp(x + σξ, min(batch), max(batch)), f(x̃) a constant (no_grad), summed over the batch; plain SGD;
    gradients accumulated over batches (step k applies g_1 + … + g_k). For f(x) = Wx + b the gradient is
    Σ u_ij x_iᵀ / den_ij (u the unit output difference), written out here in float64."""
    from unlearnbench.methods.jit import lipschitz_loss

    sigma, lr, n = 0.5, 0.1, 2
    model = _tiny_linear()
    w, b = model.head.weight.detach().double().numpy().copy(), model.head.bias.detach().double().numpy().copy()
    first_loss, _, _ = lipschitz_loss(copy.deepcopy(model), model.normalize(X_TINY[:2]), sigma, n,
                                      torch.Generator().manual_seed(5))
    method = build_method("jit", {"sigma": sigma, "lr": lr, "n_perturbations": n, "batch_size": 2})
    method.unlearn(model, UnlearnData(declared={"forget"}, forget=(X_TINY, torch.zeros(3, dtype=torch.int64)),
                                      n_classes=3), _ctx(5))

    gen = torch.Generator().manual_seed(5)  # the same draws, in the same order: per batch, ξ_1 .. ξ_N
    xn = (X_TINY.double().numpy().reshape(3, 4) - 0.5 * 255) / (0.25 * 255)
    acc_w, acc_b, losses = np.zeros_like(w), np.zeros_like(b), []
    for rows in ([0, 1], [2]):
        xb = xn[rows]
        lo, hi = xb.min(), xb.max()
        loss, g_w, g_b = 0.0, np.zeros_like(w), np.zeros_like(b)
        for _ in range(n):
            xi = torch.randn((len(rows), 1, 2, 2), generator=gen).double().numpy().reshape(len(rows), 4)
            xt = np.clip(xb + sigma * xi, lo, hi)
            out, out_t = xb @ w.T + b, xt @ w.T + b
            for i in range(len(rows)):
                diff = out[i] - out_t[i]
                num, den = np.linalg.norm(diff), np.linalg.norm(xb[i] - xt[i])
                loss += num / den
                g_w += np.outer(diff / num, xb[i]) / den
                g_b += diff / num / den
        losses.append(loss / n)
        acc_w += g_w / n
        acc_b += g_b / n
        w, b = w - lr * acc_w, b - lr * acc_b
    assert first_loss.item() == pytest.approx(losses[0], rel=1e-5)
    np.testing.assert_allclose(model.head.weight.detach().double().numpy(), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.head.bias.detach().double().numpy(), b, rtol=1e-5, atol=1e-6)
    assert model.training  # the reference never calls eval(): train mode is the default


def test_jit_forms_resolve_and_explicit_knobs_win():
    from unlearnbench.config.plan import RunSpec

    ref = build_method("jit").knobs
    assert (ref.reduction, ref.perturbed_grad, ref.clamp, ref.mode, ref.zero_grad) == \
        ("sum", "no_grad", "batch_range", "train", "once")
    eq = build_method("jit", {"form": "equation"}).knobs
    assert (eq.reduction, eq.perturbed_grad, eq.clamp, eq.mode, eq.zero_grad) == \
        ("mean", "grad", "none", "eval", "per_batch")
    mixed = build_method("jit", {"form": "equation", "mode": "train"}).knobs
    assert mixed.mode == "train" and mixed.reduction == "mean"
    # the job (and run.json) carries the resolved values
    knobs = RunSpec(name="j", method="jit", setting="standard", knobs={"form": "equation"},
                    setting_knobs={}).job("d", "s")["knobs"]
    assert knobs["reduction"] == "mean" and knobs["clamp"] == "none"
    with pytest.raises(ConfigError, match=r"methods\.j\.reduction"):
        from unlearnbench.methods import make_knobs
        make_knobs("jit", {"reduction": "median"}, "methods.j")


def test_jit_equation_form_takes_gradient_through_both_passes():
    """Form equation: d/dW of ‖W(x − x̃)‖/‖σξ‖ = u (x − x̃)ᵀ/‖σξ‖, mean over the batch, no clamp."""
    from unlearnbench.methods.jit import lipschitz_loss

    model = _tiny_linear()
    w = model.head.weight.detach().double().numpy()
    xb = model.normalize(X_TINY)
    loss, _, _ = lipschitz_loss(model, xb, 0.5, 1, torch.Generator().manual_seed(1), reduction="mean",
                                perturbed_grad=True, clamp=False)
    loss.backward()
    xi = torch.randn(xb.shape, generator=torch.Generator().manual_seed(1)).double().numpy().reshape(3, 4) * 0.5
    grad = np.zeros_like(w)
    for i in range(3):
        diff = -(w @ xi[i])  # f(x) − f(x + σξ)
        grad += np.outer(diff / np.linalg.norm(diff), -xi[i]) / np.linalg.norm(xi[i]) / 3
    np.testing.assert_allclose(model.head.weight.grad.double().numpy(), grad, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------- shared pieces, by hand

def test_adam_is_torch_adam_bit_for_bit():
    from unlearnbench.nn.optim import Adam

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    opt_a, opt_b = torch.optim.Adam(a.parameters(), lr=1e-2, weight_decay=1e-3), Adam(b.parameters(), lr=1e-2,
                                                                                        weight_decay=1e-3)
    for _ in range(30):
        x = torch.randn(8, 5)
        for m, opt in ((a, opt_a), (b, opt_b)):
            m(x).pow(2).mean().backward()
            opt.step()
            opt.zero_grad()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_gkt_one_cycle_is_torch_one_cycle():
    from unlearnbench.methods.gkt import one_cycle

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.01, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=7, steps_per_epoch=3)
    for step in range(21):
        lr, momentum = one_cycle(step, 21, 0.1)
        assert lr == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        assert momentum == pytest.approx(opt.param_groups[0]["momentum"], rel=1e-12)
        opt.step()
        sched.step()


def test_ssd_dampens_by_hand():
    """I = mean over batches of the squared batch gradient; θ ← θ·min(λ I_D / I_f, 1) where I_f > α I_D."""
    from unlearnbench.methods.ssd import dampen, importance

    model = _tiny_linear().eval()
    x = X_TINY.repeat(2, 1, 1, 1)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    imp = importance(model, x, y, batch_size=4)
    grads = []
    for rows in (slice(0, 4), slice(4, 6)):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
        grads.append(model.head.weight.grad.clone())
    assert torch.allclose(imp["head.weight"], (grads[0] ** 2 + grads[1] ** 2) / 2)
    before = model.head.weight.detach().clone()
    full = {k: torch.ones_like(v) for k, v in imp.items()}
    forget = {k: torch.full_like(v, 4.0) for k, v in imp.items()}
    forget["head.weight"][0, 0] = 1.5  # below α·I_D = 2: untouched
    dampen(model, full, forget, alpha=2.0, dampening=3.0)
    expected = before * 0.75
    expected[0, 0] = before[0, 0]
    assert torch.allclose(model.head.weight.detach(), expected)


def test_bad_teacher_kl_reduction():
    from unlearnbench.methods.bad_teacher import bad_teacher_loss

    torch.manual_seed(0)
    s, c, i = torch.randn(6, 5), torch.randn(6, 5), torch.randn(6, 5)
    tags = torch.tensor([1.0, 0, 1, 0, 0, 1])
    target = torch.where(tags[:, None] > 0, i.softmax(1), c.softmax(1))
    by_hand = (target * (target.log() - s.log_softmax(1))).sum() / 6
    assert bad_teacher_loss(s, tags, c, i, 1.0, "batchmean").item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert bad_teacher_loss(s, tags, c, i, 1.0, "mean").item() == pytest.approx(by_hand.item() / 5, rel=1e-5)


def test_fresh_model_is_the_same_architecture_newly_initialised(full_class_setup):
    from unlearnbench.datasets.experiment import ExperimentData
    from unlearnbench.steps.training import load_model, new_model

    data = ExperimentData.load(full_class_setup.data)
    trained, meta = load_model(str(full_class_setup.baseline), data, torch.device("cpu"))
    ctx = _ctx(model_factory=lambda: new_model(data, meta["model_cfg"]))
    fresh = ctx.fresh_model()
    assert type(fresh) is type(trained) and fresh.training
    assert fresh.state_dict().keys() == trained.state_dict().keys()
    assert not torch.equal(fresh.head.weight, trained.head.weight)
    assert torch.equal(fresh.normalize.mean, trained.normalize.mean)
    with pytest.raises(RuntimeError, match="model_factory"):
        _ctx().fresh_model()


# ------------------------------------------------------------------------------------------------ zero-shot

def test_zero_shot_is_derived_from_declared_reads():
    assert {name for name, cls in REGISTRY.items() if zero_shot(cls)} >= ZERO_SHOT
    for name in ("amnesiac", "bad_teacher", "ssd", "unsir", "scrub", "finetune"):
        assert not zero_shot(REGISTRY[name]), name


class _RetainRaises(UnlearnData):
    """Everything declared, the forget set present, and any touch of retain or counterfactual data an error: a
    zero-shot method must finish without it."""

    def __getattr__(self, name):
        if name in ("retain", "forget_counterfactual"):
            raise AssertionError(f"a zero-shot method read {name!r}")
        return super().__getattr__(name)




@pytest.mark.parametrize("name", sorted(ZERO_SHOT))
def test_zero_shot_method_runs_with_retain_access_raising(name, full_class_setup):
    from unlearnbench.nn import engine
    from unlearnbench.datasets.experiment import ExperimentData
    from unlearnbench.scenarios import ForgetRequest
    from unlearnbench.steps.training import load_model

    assert zero_shot(REGISTRY[name])
    data = ExperimentData.load(full_class_setup.data)
    request = ForgetRequest.load(full_class_setup.request)
    model, _ = load_model(str(full_class_setup.baseline), data, torch.device("cpu"))
    before = copy.deepcopy(model.state_dict())
    inputs = _RetainRaises(declared=DATA_KINDS, n_classes=data.n_classes, n_train=len(data.labels("train")),
                           forget=engine.to_device(*request.forget_set(data), torch.device("cpu")),
                           retain=engine.to_device(*request.retain_set(data), torch.device("cpu")))
    with pytest.raises(AssertionError, match="retain"):
        inputs.retain
    build_method(name, FAST[name]).unlearn(model, inputs, _ctx())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


# --------------------------------------------------------------------- every method on a tiny full-class setup

# Knobs for digits (1,168 training images, 117 in the forget class, small CNN with batch norm): the reference's
# values where they transfer; where the reference's budget is counted in passes over CIFAR-100 (50,000 images) the
# digits run gets the passes that give a comparable number of optimiser steps (AMN: 3 epochs ≈ 1,170 steps on
# CIFAR-100, 30 steps here → 20 epochs; BT: 1 epoch ≈ 60 steps → 20 epochs), and the slow generator / noise loops
# are cut to what CI affords (GKT 20 z batches of 64 instead of 1,000 of 128; EMMN 10 copies instead of 80).
# JiT and BDSH run in eval mode here: in their reference (train) mode on this batch-norm network the forget batches'
# running statistics alone move the forget metrics (the same numbers at lr 1e-12: docs/methods.md), which would let
# the test pass without the update; eval mode tests the update (JiT then at η 1e-5: the summed loss at the paper's
# 3e-4 collapses this model).
TEST_KNOBS = {
    "jit": {"mode": "eval", "lr": 1e-5},
    "amnesiac": {"epochs": 20},
    "bad_teacher": {"epochs": 20},
    "ssd": {"alpha": 200.0},
    "unsir": {"noise_per_copy": "batch"},  # the default (the reference's builder) repeats 1 noise image on grey digits
    "boundary_shrink": {"mode": "eval"},
    "gkt": {"pseudo_batches": 20, "batch_size": 64},
    "emmn": {"noise_copies": 10, "epochs": 4},
}
# retain-class test accuracy floors (the baseline: ~0.99): 0.9 where the paper's tables keep D_r; GKT and EMMN
# destroy D_r in the paper's own VGG11 table (D_r 2.3% and 26.9% vs 66.3% baseline, Table 2b), so their floor only
# rules out a network that predicts one class
RETAIN_FLOOR = {"gkt": 0.3, "emmn": 0.3}
GAP_MARGIN = 0.05


@pytest.fixture(scope="module")
def full_class_reference(full_class_setup):
    original = evaluate.compute_metrics(full_class_setup.outputs(full_class_setup.baseline, "original"), 10, seed=0)
    oracle = evaluate.compute_metrics(full_class_setup.outputs(full_class_setup.oracle, "oracle"), 10, seed=0)
    return original, oracle


@pytest.mark.parametrize("name", ["jit", *NEW_METHODS])
def test_method_moves_full_class_forgetting_toward_retrain(name, full_class_setup, full_class_reference):
    original, oracle = full_class_reference
    result = evaluate.compute_metrics(full_class_setup.run(name, TEST_KNOBS[name], f"fc_{name}"), 10, seed=0)
    record = json.loads((full_class_setup.root / f"fc_{name}.json").read_text())
    assert record["info"]["param_change"] > 0
    after = torch.load(full_class_setup.root / f"fc_{name}.pt", weights_only=True)["state_dict"]
    before = torch.load(full_class_setup.baseline, weights_only=True)["state_dict"]
    buffers = {k for k in before if "running" in k or "num_batches" in k}
    assert any(not torch.equal(before[k], after[k]) for k in before if k not in buffers), "no weight changed"
    gaps = {m: (abs(result[m] - oracle[m]), abs(original[m] - oracle[m]))
            for m in ("forget_acc", "forget_class_test_acc", "mia_lr_entropy")}
    assert any(after < before - GAP_MARGIN for after, before in gaps.values()), gaps
    assert result["retain_class_test_acc"] >= RETAIN_FLOOR.get(name, 0.9), result["retain_class_test_acc"]


@pytest.mark.parametrize("method", ["unsir", "emmn"])
@pytest.mark.parametrize("channels", [1, 3])
def test_noisy_sets_repeat_the_first_c_noise_images_as_the_reference_builders_do(method, channels, monkeypatch):
    """JiT's UNSIR_create_noisy_loader / emmc_create_noisy_lodaer loop `for k in range(batch[0].size(0))`, over the
    channels of one noise image: each copy holds the first C noise images (of every class, EMMN). The default does
    that; `noise_per_copy: batch` holds every image. Checked on the items the training loop is handed."""
    import importlib

    from unlearnbench.nn.models import build_model

    module = importlib.import_module(f"unlearnbench.methods.{method}")
    seen = []

    class Stop(Exception):
        pass

    def record(model, n, batch, **kw):
        x, y = batch(torch.arange(n))
        seen.append((n, x, y))
        raise Stop
    monkeypatch.setattr(module, "train_adam", record)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, channels, 8, 8), dtype=torch.uint8, generator=gen)
    y = torch.arange(40) % 4
    model = build_model("small_cnn", in_channels=channels, n_classes=4, mean=[0.5] * channels, std=[0.25] * channels,
                        width=4)
    knobs = {"noise_steps": 1} if method == "unsir" else {"forget_noise_steps": 1, "retain_noise_steps": 1}
    batch_size = 32 if method == "unsir" else 4
    for per_copy, per_class in (("channels", channels), ("batch", batch_size)):
        seen.clear()
        method_ = build_method(method, {**knobs, "noise_copies": 5, "noise_per_copy": per_copy})
        data = UnlearnData(declared=method_.reads, n_classes=4, forget=(x[y == 1], y[y == 1]),
                           **({"retain": (x[y != 1], y[y != 1])} if "retain" in method_.reads else {}))
        with pytest.raises(Stop):
            method_.unlearn(copy.deepcopy(model), data, _ctx())
        n, xs, ys = seen[0]
        classes = 1 if method == "unsir" else 4
        n_noise = 5 * classes * per_class
        assert n == n_noise + (30 if method == "unsir" else 0)
        one_copy = xs[:classes * per_class]
        for k in range(1, 5):  # every copy the same images, labelled class by class (EMMN: forget class last)
            assert torch.equal(xs[k * classes * per_class:(k + 1) * classes * per_class], one_copy)
        expect = [1] * per_class if method == "unsir" else [0] * per_class + [2] * per_class + [3] * per_class + \
            [1] * per_class
        assert ys[:classes * per_class].tolist() == expect


# ------------------------------------------------------------------------------------------- scenario limits

def _config(method: str, scenario: dict) -> dict:
    return {"results": "results", "seeds": 1, "datasets": {"digits": {"source": "digits"}},
            "scenarios": {"s": scenario}, "methods": {"run": {"method": method}}}


@pytest.mark.parametrize("method", ["gkt", "emmn", "unsir"])
def test_full_class_only_method_on_random_is_a_config_error(method):
    assert REGISTRY[method].scenarios is not None and "random" not in REGISTRY[method].scenarios
    with pytest.raises(ConfigError, match=r"methods\.run\.method: .* full_class"):
        parse(_config(method, {"type": "random", "fraction": 0.1}))
    parse(_config(method, {"type": "full_class", "forget_class": 3}))


def test_unsir_runs_on_sub_class_as_the_reference_does():
    assert REGISTRY["unsir"].scenarios == {"full_class", "sub_class"}
    assert REGISTRY["gkt"].scenarios == REGISTRY["emmn"].scenarios == {"full_class"}


def test_paper_jit_config_gives_the_papers_per_scenario_values():
    """config/paper_jit.yaml: JiT's σ/η per scenario (paper §5, VGG11) and the reference's forget batch sizes reach
    the jobs; every method of JiT's tables is configured."""
    from pathlib import Path

    import yaml
    from snakemake.utils import validate

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "paper_jit.yaml").read_text())
    validate(config, str(root / "config" / "schema.yaml"))
    plan = parse(config)
    jobs = {(d, s): plan.job("jit", d, s)["knobs"] for d, s in plan.experiments}

    def knobs(dataset, scenario, *names):
        return tuple(jobs[(dataset, scenario)][n] for n in names)

    # VGG11 (paper §5 = the authors' code) and ViT (paper §5), per scenario type, by dataset
    assert knobs("cifar100", "full_class", "lr", "sigma", "batch_size") == (3e-4, 0.5, 128)
    assert knobs("cifar100", "full_class_lamp", "lr", "sigma", "batch_size") == (3e-4, 0.5, 128)
    assert knobs("cifar20", "sub_class", "lr", "sigma", "batch_size") == (3e-4, 0.01, 64)
    assert knobs("cifar10", "random_n", "sigma", "batch_size") == (0.01, 128)
    assert knobs("cifar100_vit", "full_class", "lr", "sigma") == (1.5, 0.8)
    assert knobs("cifar20_vit", "sub_class", "lr", "sigma", "batch_size") == (0.5, 1.5, 64)
    assert knobs("cifar10_vit", "random_n", "lr", "sigma") == (0.01, 0.5)
    assert {spec.method for spec in plan.runs.values()} >= {"jit", "finetune", "amnesiac", "bad_teacher", "ssd",
                                                            "unsir", "boundary_shrink", "gkt", "emmn", "scrub"}
    assert set(plan.runs_for("random_n")).isdisjoint({"gkt", "emmn", "unsir"})
    assert set(plan.runs_for("worst_case")).isdisjoint({"gkt", "emmn", "unsir"})
    assert {config["datasets"][d]["model"]["arch"] for d in config["datasets"]} == {"vgg11", "vit_small"}
