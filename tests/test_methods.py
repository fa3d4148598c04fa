"""The pipeline's core unlearning methods on a tiny real setup (digits, small CNN, 10% random forget set)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import INFLUENCE_ACTING
from test_conformance import FAST
from unlearnbench.evaluation import evaluate
from unlearnbench.methods import (REGISTRY, ConfigError, UndeclaredReadError, UnlearnContext, UnlearnData,
                                  build_method, make_knobs)
from unlearnbench.methods.influence import hessian_vector_product, lissa_inverse_hvp

TEST_F1_FLOOR = 0.90  # the baseline reaches ~0.98 on this setup; unlearning may cost a little, not collapse it

# the default config's knobs (config.yaml), so the test checks what users run, except influence: its config
# (scale 1000, damping 0.01) barely moves this setup, so the test uses the stronger, still convergent scale 50 /
# damping 0.02 (effective ridge λ = 1); and the digits-scale values proposed for config.yaml with the reference
# defaults (docs/methods.md: batch 64 for FT on ~1,100 retain images, GA batch 32, lr 0.003, 5 epochs), which the
# defaults (Unlearn-Sparse's batch 256; GA lr 1e-4) replace when the config does not set them.
CORE_METHODS = ["finetune", "gradient_ascent", "influence", "jit"]
# jit: the paper's full-class VGG11 values, as config.yaml runs it on full_class (an earlier entry, lr 0.005 with
# batch 32, set for the mean-over-batch form, over-steps with the authors' summed form: forget accuracy 1.0 → 0.27
# against the oracle's 0.98)
DIGITS_SCALE = {"finetune": {"batch_size": 64}, "gradient_ascent": {"epochs": 5, "lr": 0.003, "batch_size": 32}}
UIB_DIGITS = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "uib_digits.yaml").read_text())
TEST_OVERRIDES = {"influence": INFLUENCE_ACTING,
                  "jit": {"lr": 0.0003, "sigma": 0.5, "batch_size": 128}, **DIGITS_SCALE}


# a run's entries that are not the method's knobs
RUN_KEYS = ("method", "setting", "setting_knobs", "scenarios", "by_dataset", "by_scenario", "tune", "sweep",
            "sweep_list", "sweep_seeds")


@pytest.fixture(scope="module")
def reference(random_setup):
    original = evaluate.compute_metrics(random_setup.outputs(random_setup.baseline, "original"), 10, seed=0)
    oracle = evaluate.compute_metrics(random_setup.outputs(random_setup.oracle, "oracle"), 10, seed=0)
    return original, oracle


@pytest.mark.parametrize("run", CORE_METHODS)
def test_method_moves_forget_metrics_toward_retrain(run, random_setup, reference, default_config):
    spec = default_config["methods"].get(run) or UIB_DIGITS["methods"][run]  # GA: not in the default
    knobs = {k: v for k, v in spec.items() if k not in RUN_KEYS}
    knobs.update(TEST_OVERRIDES.get(run, {}))
    outputs = random_setup.run(spec["method"], knobs, run)
    result = evaluate.compute_metrics(outputs, 10, seed=0)
    original, oracle = reference
    record = __import__("json").loads((random_setup.root / f"{run}.json").read_text())
    assert record["info"]["param_change"] > 0, "the method did not change the model"
    gaps = {m: (abs(result[m] - oracle[m]), abs(original[m] - oracle[m])) for m in ("forget_acc", "mia_efficacy_svc")}
    assert any(after < before for after, before in gaps.values()), f"no forget metric moved toward retrain: {gaps}"
    assert result["test_f1"] >= TEST_F1_FLOOR


def test_each_core_method_is_registered():
    assert set(CORE_METHODS) <= set(REGISTRY)


@pytest.mark.parametrize("name", CORE_METHODS)
def test_method_reads_only_declared_data(name, random_setup):
    """The runner hands a method only what it declared, and reading anything else raises (not just None)."""
    from unlearnbench.nn import engine
    from unlearnbench.datasets.experiment import ExperimentData
    from unlearnbench.scenarios import ForgetRequest
    from unlearnbench.steps.training import load_model
    from unlearnbench.steps.unlearning import method_inputs

    data = ExperimentData.load(random_setup.data)
    request = ForgetRequest.load(random_setup.request)
    model, _ = load_model(str(random_setup.baseline), data, torch.device("cpu"))
    method = build_method(name, FAST[name])  # the one table of fast knobs (tests/test_conformance.py)
    inputs = method_inputs(method, data, request, torch.device("cpu"))
    assert inputs.declared == method.reads
    for kind in ("forget", "retain", "forget_counterfactual"):
        if kind not in method.reads:
            with pytest.raises(UndeclaredReadError, match=kind):
                getattr(inputs, kind)
    # the method runs on exactly its declared data: an undeclared read would raise inside unlearn
    method.unlearn(model, inputs, UnlearnContext(torch.device("cpu"), engine.seed_everything(0), log=lambda s: None))


def test_undeclared_read_raises_even_when_the_data_exists():
    x = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    y = torch.zeros(2, dtype=torch.int64)
    full = UnlearnData(forget=(x, y), retain=(x, y))
    zero_shot = full.restrict({"forget"}, owner="method 'z'")
    assert zero_shot.forget[0] is x
    with pytest.raises(UndeclaredReadError, match="method 'z' read 'retain'"):
        zero_shot.retain
    with pytest.raises(UndeclaredReadError):
        zero_shot.restrict({"forget", "retain"})


def test_lissa_matches_exact_inverse_hessian_vector_product():
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = torch.randint(0, 3, (64,))
    model = torch.nn.Linear(5, 3)
    params = list(model.parameters())

    def loss():
        return torch.nn.functional.cross_entropy(model(x), y) + 0.05 * sum((p ** 2).sum() for p in params)

    flat = torch.cat([p.reshape(-1) for p in params])
    n = flat.numel()
    hessian = torch.zeros(n, n)
    for i in range(n):
        e = torch.zeros(n)
        e[i] = 1
        pieces, offset = [], 0
        for p in params:
            pieces.append(e[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        hessian[:, i] = torch.cat([h.reshape(-1) for h in hessian_vector_product(loss(), params, pieces)])
    v = [torch.randn_like(p) for p in params]
    v_flat = torch.cat([t.reshape(-1) for t in v])
    scale, damping = 10.0, 0.001
    exact = torch.linalg.solve(hessian + damping * scale * torch.eye(n), v_flat)
    estimate = lissa_inverse_hvp(loss, params, v, damping=damping, scale=scale, depth=3000)
    estimate = torch.cat([t.reshape(-1) for t in estimate])
    assert torch.allclose(estimate, exact, rtol=1e-3, atol=1e-4), (estimate - exact).abs().max()


def test_lissa_divergence_is_a_clear_error():
    model = torch.nn.Linear(3, 2)
    params = list(model.parameters())
    x, y = torch.randn(16, 3) * 100, torch.randint(0, 2, (16,))
    with pytest.raises(FloatingPointError, match="raise scale"):
        lissa_inverse_hvp(lambda: torch.nn.functional.cross_entropy(model(x), y) * 1e6, params,
                          [torch.ones_like(p) for p in params], damping=0.0, scale=1e-3, depth=500)


@pytest.mark.parametrize("knobs,key", [({"lr": -0.1}, "lr"), ({"epochs": 0}, "epochs"), ({"bogus": 1}, "bogus"),
                                       ({"lr": "fast"}, "lr")])
def test_bad_knob_names_its_key(knobs, key):
    with pytest.raises(ConfigError, match=rf"methods\.ft\.{key}"):
        make_knobs("finetune", knobs, where="methods.ft")


def test_unknown_method_names_its_key():
    with pytest.raises(ConfigError, match=r"methods\.x\.method: unknown method 'nope'"):
        make_knobs("nope", {}, where="methods.x")


def test_bias_scenario_finetune_keeps_the_link_it_reads(bias_setup, default_config):
    """FT reads D_r exactly as the baseline saw it (no method reads re-coloured retain data), so it keeps
    the colour -> label link it is fine-tuned on: its Cramér's V stays far above the oracle's. In earlier versions the
    retain set was re-coloured like the oracle's training set, and FT "unlearned" the bias from that privileged
    data (V 1.0 -> 0.4 here); this is the finding the table now shows (docs/results.md)."""
    original = evaluate.compute_metrics(bias_setup.outputs(bias_setup.baseline, "original"), 10, seed=0)
    oracle = evaluate.compute_metrics(bias_setup.outputs(bias_setup.oracle, "oracle_v"), 10, seed=0)
    spec = default_config["methods"]["finetune"]
    knobs = {"epochs": spec["epochs"], "lr": spec["lr"], **DIGITS_SCALE["finetune"]}
    result = evaluate.compute_metrics(bias_setup.run("finetune", knobs, "ft"), 10, seed=0)
    assert original["bias_cramers_v"] > oracle["bias_cramers_v"] + 0.2  # the baseline uses the colour
    assert result["bias_cramers_v"] > oracle["bias_cramers_v"] + 0.1  # and FT on the data it saw keeps using it


def test_same_job_twice_gives_identical_outputs(random_setup):
    a = random_setup.run("jit", {"lr": 0.005, "sigma": 0.5}, "det_a")
    b = random_setup.run("jit", {"lr": 0.005, "sigma": 0.5}, "det_b")
    for key in a:
        assert np.array_equal(a[key], b[key]), key
