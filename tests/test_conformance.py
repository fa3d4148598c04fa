"""Registry-wide conformance, in scikit-learn's `check_estimator` shape: every registered method, every wrapper
with every inner method it supports, on a scenario type it is defined for, passes the same checks. A method added
to the registry without an entry in `FAST` (below) fails here, so no method reaches a table untested.

Per method: its default knobs validate and so do its fast ones; it runs on a tiny real setup (digits, small CNN,
the baseline the workflow trains) through the runner's own inputs (`method_inputs`: reading anything it did not
declare raises, so a zero-shot method runs with every read but the forget set raising); it calls
`ctx.iteration(model)`; it leaves no gradients, no hooks and no frozen parameters on the model; it changes the
model; two runs from the same seed give identical weights; the scenario types it declares exist. Per wrapper ×
inner method: the settings' knobs validate, the wrapper's reads include the inner method's, and it runs (UIB on
the same setup; Sparsity from the baseline pruned as the sparse baseline job prunes it)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from unlearnbench.methods import REGISTRY, WRAPPERS, build_method, make_knobs
from unlearnbench.methods.base import UnlearnContext, zero_shot
from unlearnbench.scenarios import REGISTRY as SCENARIOS

# THE table of fast knobs: every registered method's cheapest meaningful run on the tiny setups (a few hundred
# optimiser steps at most). Other test modules keep knobs that make a method act measurably (a different purpose).
FAST = {
    "amnesiac": {"epochs": 1},
    "bad_teacher": {"epochs": 1},
    "boundary_shrink": {"epochs": 1},
    "emmn": {"noise_copies": 2, "forget_noise_steps": 2, "retain_noise_steps": 2, "epochs": 1},
    "finetune": {"epochs": 1},
    "fisher": {"alpha": 1e-6, "clip": 0.01},
    "fisher_new": {"alpha": 1e-5},
    "gkt": {"pseudo_batches": 2, "batch_size": 16, "student_steps": 2, "threshold": 1.0},
    "gradient_ascent": {"epochs": 1, "lr": 0.001},
    "influence": {"depth": 3, "power_iters": 2, "power_sample": 64, "batch_size": 32},
    "jit": {"n_perturbations": 2},
    "l1_sparse": {"epochs": 1},
    "marginal_mi": {"epochs": 1},
    "mi_feature": {"epochs": 1},
    "ot_repair": {"epochs": 1},
    "random_label": {"epochs": 1},
    "scrub": {"sgda_epochs": 1, "msteps": 1},
    "ssd": {},
    "unsir": {"noise_copies": 2, "noise_steps": 2},
}
# the wrappers' knobs for a fast run (UIB: its defaults are already cheap)
FAST_SETTING = {"uib": {}, "sparsity": {"sparsity": 0.5}}


def in_tree(name: str) -> bool:
    return REGISTRY[name].__module__.startswith("unlearnbench.")


def fast(name: str) -> dict:
    """A method's fast knobs: FAST for unlearnbench's own methods; a plugin's method (an installed package's,
    found through an entry point) declares its own as the class attribute `fast_knobs`."""
    return FAST[name] if in_tree(name) else dict(REGISTRY[name].fast_knobs)


def _setup_for(method, request):
    """The tiny setup of a scenario type the method is defined for: full_class when it runs there (JiT's methods
    that are full-class only), bias when it needs colours, else full_class."""
    allowed = method.scenarios
    if allowed is None or "full_class" in allowed:
        return request.getfixturevalue("full_class_setup")
    if "bias" in allowed:
        return request.getfixturevalue("bias_setup")
    pytest.fail(f"method {method.name!r} runs only on {sorted(allowed)}: add a tiny setup for one of them")


def _run(method, setup, start=None, seed=0):
    """The method applied as the runner applies it; returns (model, number of ctx.iteration calls)."""
    from unlearnbench.datasets.experiment import ExperimentData
    from unlearnbench.nn import engine
    from unlearnbench.scenarios import ForgetRequest
    from unlearnbench.steps.training import load_model, new_model
    from unlearnbench.steps.unlearning import method_inputs

    dev = torch.device("cpu")
    data = ExperimentData.load(setup.data)
    request = ForgetRequest.load(setup.request)
    model, meta = load_model(str(start or setup.baseline), data, dev)
    inputs = method_inputs(method, data, request, dev)
    calls = []
    generator = engine.seed_everything(seed)
    ctx = UnlearnContext(dev, generator, log=lambda message: None, on_iteration=lambda i, m: calls.append(i),
                         start_meta=meta, model_factory=lambda: new_model(data, meta["model_cfg"]))
    method.unlearn(model, inputs, ctx)
    return model, len(calls)


def _assert_clean(model, name):
    grads = [n for n, p in model.named_parameters() if p.grad is not None]
    assert grads == [], f"{name} left gradients on {grads[:3]}..."
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen == [], f"{name} left parameters frozen: {frozen[:3]}..."
    hooks = [n for n, m in model.named_modules()
             if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
             or getattr(m, "_backward_pre_hooks", None)]
    assert hooks == [], f"{name} left hooks on modules {hooks[:3]}"


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_every_registered_method_has_an_entry_in_the_fast_table():
    own = {name for name in REGISTRY if in_tree(name)}
    assert own == set(FAST), (f"no FAST entry: {sorted(own - set(FAST))}; stale entry: {sorted(set(FAST) - own)}")
    plugins = set(REGISTRY) - own
    assert all(isinstance(getattr(REGISTRY[n], "fast_knobs", None), dict) for n in plugins), \
        f"a plugin method must declare fast_knobs: {sorted(plugins)}"
    assert set(WRAPPERS) == set(FAST_SETTING)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_default_and_fast_knobs_validate_and_declared_scenarios_exist(name):
    cls = REGISTRY[name]
    defaults = make_knobs(name, {}, f"methods.{name}")
    assert dataclasses.is_dataclass(defaults)
    build_method(name, {})
    build_method(name, fast(name))
    assert set(cls.reads) <= {"forget", "retain", "forget_counterfactual", "retain_attribute"}
    if cls.scenarios is not None:
        assert set(cls.scenarios) <= set(SCENARIOS), sorted(set(cls.scenarios) - set(SCENARIOS))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_a_method_runs_cleanly_and_deterministically_on_a_tiny_setup(name, request):
    method = build_method(name, fast(name))
    setup = _setup_for(method, request)
    from unlearnbench.steps.training import load_model
    from unlearnbench.datasets.experiment import ExperimentData

    original, _ = load_model(str(setup.baseline), ExperimentData.load(setup.data), torch.device("cpu"))
    first, iterations = _run(method, setup)
    assert iterations >= 1, f"{name} never called ctx.iteration(model)"
    _assert_clean(first, name)
    assert not _same_weights(first, original), f"{name} did not change the model"
    second, _ = _run(build_method(name, fast(name)), setup)
    assert _same_weights(first, second), f"{name}: two runs from the same seed differ"
    if zero_shot(method):
        assert set(method.reads) <= {"forget"}


def _wrapped_cases():
    for wrapper, cls in sorted(WRAPPERS.items()):
        for inner in sorted(REGISTRY):
            if cls.supports is None or inner in cls.supports:
                yield wrapper, inner


@pytest.mark.parametrize("wrapper,inner", list(_wrapped_cases()))
def test_a_wrapper_runs_each_inner_method_it_supports(wrapper, inner, request, tmp_path):
    method = build_method(inner, fast(inner), setting=wrapper, setting_knobs=FAST_SETTING[wrapper])
    assert set(REGISTRY[inner].reads) <= set(method.reads)
    setup = _setup_for(method, request)
    start = None
    if WRAPPERS[wrapper].start == "sparse_baseline":
        start = _pruned_baseline(setup, tmp_path, FAST_SETTING[wrapper]["sparsity"])
    model, iterations = _run(method, setup, start=start)
    assert iterations >= 1, f"{wrapper}/{inner} never called ctx.iteration(model)"
    _assert_clean(model, f"{wrapper}/{inner}")


def _pruned_baseline(setup, tmp_path, sparsity):
    """The baseline pruned to `sparsity` with its fixed mask, saved as the sparse baseline job saves it."""
    from unlearnbench.datasets.experiment import ExperimentData
    from unlearnbench.nn import pruning
    from unlearnbench.steps.training import load_model, save_model

    data = ExperimentData.load(setup.data)
    model, meta = load_model(str(setup.baseline), data, torch.device("cpu"))
    pruning.prune_model(model, sparsity)
    path = tmp_path / "sparse.pt"
    save_model(path, model, data, meta["model_cfg"], {"seed": 0, "sparsity": sparsity})
    return path
