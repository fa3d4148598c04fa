"""Defaults that follow the reference codes (docs/methods.md, "Reference comparisons"), checked against hand
computations on tiny models: Fisher scrubbing (fisher_new, UIB's SR) as Golatkar / Unlearn-Sparse compute it, plain
momentum unless Nesterov is asked for, RL's per-epoch redraw, GA in train mode with weight decay, the OMP rewind.
The numerical equality with the reference code itself is benchmarks/reference_equality.py (needs their checkouts).
"""
from __future__ import annotations

import collections
import copy

import pytest
import torch
import torch.nn.functional as F

from unlearnbench.nn import engine
from unlearnbench.methods import REGISTRY, UnlearnContext, UnlearnData, build_method
from unlearnbench.methods import fisher_new

pytestmark = pytest.mark.timeout(300)


class Tiny(torch.nn.Module):
    """conv (no bias) → batch-norm → linear head: every kind of tensor fisher_new treats differently."""

    def __init__(self, c=4):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(3)
        self.head = torch.nn.Linear(3 * 4 * 4, c)

    def forward(self, x):
        x = x.float() / 255.0
        return self.head(F.relu(self.bn(self.conv(x))).flatten(1))


def tiny_data(n=40, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.randint(0, c, (n,), generator=g)
    return x, y


def tiny_model(seed=0, c=4):
    torch.manual_seed(seed)
    m = Tiny(c)
    with torch.no_grad():  # non-trivial batch-norm statistics
        m.bn.running_mean.uniform_(-0.2, 0.2)
        m.bn.running_var.uniform_(0.5, 1.5)
    return m.eval()


def per_sample_grads(model, x, c):
    """g[i][y] = ∇_θ CE(f(x_i), y), one backward pass per (sample, class), model in eval mode."""
    model.eval()
    params = list(model.parameters())
    out = []
    for i in range(len(x)):
        row = []
        for y in range(c):
            loss = F.cross_entropy(model(x[i:i + 1]), torch.tensor([y]))
            row.append([g.detach().double() for g in torch.autograd.grad(loss, params)])
        out.append(row)
    return out


def hand_fisher(model, x, c, batch):
    """Golatkar (batch 1): F = mean_i Σ_y p_i(y)·g_iy²; Unlearn-Sparse (batch B): F = mean over batches of
    Σ_y mean_B p(y) · (mean_B g_y)², from per-sample gradients (the batch-mean gradient is their mean in eval mode)."""
    g = per_sample_grads(model, x, c)
    with torch.no_grad():
        prob = F.softmax(model(x), -1).double()
    n_params = len(g[0][0])
    total = [torch.zeros_like(t) for t in g[0][0]]
    starts = list(range(0, len(x), batch))
    for s in starts:
        rows = range(s, min(s + batch, len(x)))
        for y in range(c):
            p_bar = prob[list(rows), y].mean()
            for j in range(n_params):
                g_bar = sum(g[i][y][j] for i in rows) / len(rows)
                total[j] += p_bar * g_bar ** 2
    return [t / len(starts) for t in total]


def hand_mean_var(model, fisher, alpha, c, forgotten=()):
    """Golatkar's get_mean_var by hand, per tensor kind: conv weight [o, i, kh, kw] → mean over i; head weight [c, d]
    → per-row mean of min(1/(F+1e-8), 1e2), ×10; head bias and batch-norm (1-D) → elementwise, ×10."""
    out = []
    for p, f in zip(model.parameters(), fisher):
        inv = 1.0 / (f + 1e-8)
        head = p.shape[0] == c
        v = alpha * inv.clamp(max=1e2 if head else 1e3)
        if p.ndim == 4:
            v = v.mean(dim=1, keepdim=True).expand_as(p)
        elif p.ndim == 2:
            v = v.mean(dim=1, keepdim=True).expand_as(p)
        v = v.clone()
        mu = p.detach().double().clone()
        if head:
            for k in forgotten:
                mu[k] = 0
                v[k] = 1e-4
        if head or p.ndim == 1:
            v = v * 10
        out.append((mu, v))
    return out


@pytest.mark.parametrize("batch", [32, 1, 7])
def test_fisher_new_matches_the_formula_by_hand(batch):
    """Unlearn-Sparse's batch-32 Hessian, Golatkar's per-sample one (batch 1) and another size, against the formula
    computed from per-sample gradients; then the variance rules per tensor kind."""
    c = 4
    x, _ = tiny_data(40, c)
    model = tiny_model()
    ours = fisher_new.fisher_diagonal(copy.deepcopy(model), x, c, batch, chunk=16)
    hand = hand_fisher(model, x, c, batch)
    for o, h, (name, _) in zip(ours, hand, model.named_parameters()):
        assert torch.allclose(o.double(), h, rtol=1e-4, atol=1e-12), name
    assert min(float(h.max()) for h in hand) > 0
    for alpha in (1e-6, 1e-2):  # caps binding (tiny α) and not binding
        for p, f, (mu_h, v_h) in zip(model.parameters(), ours, hand_mean_var(model, hand, alpha, c)):
            mu, v = fisher_new.mean_var(p, f, alpha, c, [])
            assert torch.equal(mu, p.detach())
            assert torch.allclose(v.double(), v_h, rtol=1e-4), (p.shape, alpha)


def test_fisher_new_samples_mean_plus_scaled_noise_and_zeroes_a_forgotten_class():
    """The whole method: θ = μ + √v ⊙ ε with ε from the run's generator in parameter order; a class absent from the
    retain set (full-class forgetting) gets μ = 0 and v = 1e-4·10 on its head row (class_rule golatkar)."""
    c = 4
    x, y = tiny_data(48, c)
    keep = y != 2  # class 2 forgotten entirely
    model = tiny_model()
    m = build_method("fisher_new", {"alpha": 1e-2})
    data = UnlearnData(declared=m.reads, n_train=48, n_classes=c, retain=(x[keep], y[keep]))
    out = copy.deepcopy(model)
    m.unlearn(out, data, UnlearnContext(torch.device("cpu"), torch.Generator().manual_seed(5), log=lambda s: None))
    hand = hand_mean_var(model, hand_fisher(model, x[keep], c, 32), 1e-2, c, forgotten=[2])
    g = torch.Generator().manual_seed(5)
    for p_new, p, (mu, v) in zip(out.parameters(), model.parameters(), hand):
        eps = torch.randn(p.shape, generator=g).double()
        assert torch.allclose(p_new.detach().double(), mu + v.sqrt() * eps, rtol=1e-4, atol=1e-7)
    assert torch.allclose(out.head.weight[2], torch.zeros(()), atol=4 * (1e-3) ** 0.5)
    assert abs(float(out.head.weight[2].std()) - 1e-3 ** 0.5) < 0.02


def test_fisher_new_class_rules():
    y_all = torch.arange(10).repeat_interleave(10)
    missing3 = y_all[y_all != 3]
    assert fisher_new.forgotten_classes("golatkar", missing3, 10, 10) == [3]
    assert fisher_new.forgotten_classes("golatkar", y_all, 10, 0) == []
    assert fisher_new.forgotten_classes("none", missing3, 10, 10) == []
    # Unlearn-Sparse keys on the request size: 4500 forget points with 10 classes (their CIFAR-10 class 0) ...
    assert fisher_new.forgotten_classes("unlearn_sparse", missing3, 10, 4500) == [3]
    # ... and in random forgetting of 4500 points it zeroes the last class's row (their class_to_replace = -1)
    assert fisher_new.forgotten_classes("unlearn_sparse", y_all, 10, 4500) == [9]
    assert fisher_new.forgotten_classes("unlearn_sparse", missing3, 10, 100) == []
    assert fisher_new.forgotten_classes("unlearn_sparse", torch.arange(100), 100, 450) == [99]


# ---------------------------------------------------------------------------------------------- momentum

def _hand_sgd(theta, grads, lr, momentum, wd, nesterov):
    buf = None
    for g in grads:
        d = g + wd * theta
        buf = d.clone() if buf is None else momentum * buf + d
        theta = theta - lr * ((d + momentum * buf) if nesterov else buf)
    return theta


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_is_plain_momentum_unless_nesterov(nesterov):
    """Two steps of engine.SGD against the heavy-ball / Nesterov update by hand (coupled weight decay)."""
    theta0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    grads = [torch.tensor([0.3, -0.1, 0.2], dtype=torch.float64), torch.tensor([-0.2, 0.4, 0.1], dtype=torch.float64)]
    p = torch.nn.Parameter(theta0.clone())
    opt = engine.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=nesterov)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    assert torch.allclose(p.detach(), _hand_sgd(theta0, grads, 0.1, 0.9, 0.01, nesterov), rtol=0, atol=1e-12)
    assert not torch.allclose(p.detach(), _hand_sgd(theta0, grads, 0.1, 0.9, 0.01, not nesterov), atol=1e-3)


def test_plain_momentum_is_every_default():
    """engine.TrainConfig (the baseline recipe), the schema's train.nesterov and every method's knobs default to plain
    momentum; the knob switches the optimiser to Nesterov."""
    import yaml
    from pathlib import Path

    assert engine.TrainConfig().nesterov is False
    assert engine.make_optimizer(torch.nn.Linear(2, 2), engine.TrainConfig()).nesterov is False
    assert engine.make_optimizer(torch.nn.Linear(2, 2), engine.TrainConfig(nesterov=True)).nesterov is True
    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/schema.yaml").read_text())
    assert schema["$defs"]["dataset"]["properties"]["train"]["properties"]["nesterov"]["default"] is False
    for name in ("finetune", "random_label", "l1_sparse", "gradient_ascent", "scrub"):
        assert REGISTRY[name].Knobs().nesterov is False, name
    assert REGISTRY["finetune"].Knobs().train_config().nesterov is False
    assert REGISTRY["finetune"].Knobs(nesterov=True).train_config().nesterov is True


@pytest.mark.parametrize("nesterov", [False, True])
def test_finetune_step_is_the_hand_update(nesterov):
    """FT (engine.train) for two full-batch steps equals the hand update with the autograd gradient."""
    x, y = tiny_data(16)
    model = tiny_model()
    m = build_method("finetune", {"epochs": 2, "batch_size": 16, "lr": 0.05, "nesterov": nesterov})
    ref = copy.deepcopy(model)
    m.unlearn(model, UnlearnData(declared=m.reads, n_train=20, n_classes=4, retain=(x, y)),
              UnlearnContext(torch.device("cpu"), torch.Generator().manual_seed(0), log=lambda s: None))
    params = list(ref.parameters())
    bufs = [None] * len(params)
    ref.train()
    for _ in range(2):
        grads = torch.autograd.grad(F.cross_entropy(ref(x), y), params)
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(params, grads)):
                d = g + 5e-4 * p
                bufs[i] = d.clone() if bufs[i] is None else 0.9 * bufs[i] + d
                p -= 0.05 * ((d + 0.9 * bufs[i]) if nesterov else bufs[i])
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


# ---------------------------------------------------------------------------------------------- RL

def _labels_per_epoch(monkeypatch, knobs):
    """Run RL on tiny data; the multiset of training labels it fits in each epoch."""
    x_f, y_f = tiny_data(24, seed=1)
    x_r, y_r = tiny_data(40, seed=2)
    seen = collections.defaultdict(collections.Counter)
    epoch = [0]
    real = F.cross_entropy

    def spy(logits, target, *a, **k):
        seen[epoch[0]].update(target.tolist())
        return real(logits, target, *a, **k)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", spy)
    m = build_method("random_label", {"epochs": 3, "batch_size": 16, **knobs})
    data = UnlearnData(declared=m.reads, n_train=64, n_classes=4, forget=(x_f, y_f), retain=(x_r, y_r))
    ctx = UnlearnContext(torch.device("cpu"), torch.Generator().manual_seed(0), log=lambda s: None,
                         on_iteration=lambda i, mdl: epoch.__setitem__(0, i))
    m.unlearn(tiny_model(), data, ctx)
    return [seen[e] for e in range(3)], collections.Counter(y_r.tolist()), y_f


def test_random_label_redraws_every_epoch_from_all_classes(monkeypatch):
    per_epoch, retain, y_f = _labels_per_epoch(monkeypatch, {})
    forget_labels = [c - retain for c in per_epoch]  # what the forget points were fitted to, epoch by epoch
    assert all(sum(f.values()) == len(y_f) for f in forget_labels)
    assert forget_labels[0] != forget_labels[1] and forget_labels[1] != forget_labels[2]
    assert REGISTRY["random_label"].Knobs().redraw == "epoch" and not REGISTRY["random_label"].Knobs().exclude_true


def test_random_label_draw_once_knob(monkeypatch):
    per_epoch, _, _ = _labels_per_epoch(monkeypatch, {"redraw": "once", "exclude_true": True})
    assert per_epoch[0] == per_epoch[1] == per_epoch[2]


def test_random_labels_exclude_true_never_hits_the_label():
    from unlearnbench.methods.random_label import random_labels

    y = torch.arange(10).repeat(50)
    g = torch.Generator().manual_seed(0)
    assert not (random_labels(y, 10, g, exclude_true=True) == y).any()
    assert (random_labels(y, 10, g, exclude_true=False) == y).any()  # all classes: the true one included


# ---------------------------------------------------------------------------------------------- GA

def test_gradient_ascent_train_mode_and_weight_decay_by_default():
    """Defaults: Unlearn-Sparse's GA (train mode: batch-norm statistics move; weight decay 5e-4 coupled into the
    ascent step, plain momentum); the step equals the hand update. mode: eval keeps the statistics."""
    k = REGISTRY["gradient_ascent"].Knobs()
    assert (k.mode, k.weight_decay, k.nesterov, k.lr, k.epochs, k.batch_size) == ("train", 5e-4, False, 1e-4, 5, 256)
    x, y = tiny_data(16)
    model = tiny_model()
    m = build_method("gradient_ascent", {"epochs": 1, "lr": 0.05})
    ref = copy.deepcopy(model)
    m.unlearn(model, UnlearnData(declared=m.reads, n_train=20, n_classes=4, forget=(x, y)),
              UnlearnContext(torch.device("cpu"), torch.Generator().manual_seed(0), log=lambda s: None))
    assert not torch.equal(model.bn.running_mean, ref.bn.running_mean)
    ref.train()
    params = list(ref.parameters())
    grads = torch.autograd.grad(-F.cross_entropy(ref(x), y), params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p -= 0.05 * (g + 5e-4 * p)
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    frozen = tiny_model()
    before = frozen.bn.running_mean.clone()
    build_method("gradient_ascent", {"epochs": 1, "lr": 0.05, "mode": "eval"}).unlearn(
        frozen, UnlearnData(declared=m.reads, n_train=20, n_classes=4, forget=(x, y)),
        UnlearnContext(torch.device("cpu"), torch.Generator().manual_seed(0), log=lambda s: None))
    assert torch.equal(frozen.bn.running_mean, before)


# ---------------------------------------------------------------------------------------------- OMP rewind

def test_rewind_epoch_scales_unlearn_sparse_8_of_182():
    from unlearnbench.steps.training import rewind_epoch

    assert rewind_epoch(182) == 8 and rewind_epoch(20) == 1 and rewind_epoch(8) == 1 and rewind_epoch(400) == 18
    assert rewind_epoch(20, 3) == 3
    from unlearnbench.core.errors import ConfigError
    with pytest.raises(ConfigError, match="sparse_baseline.rewind_epoch"):
        rewind_epoch(1)


def test_sparse_baseline_rewinds_to_the_epoch_k_state(random_setup, monkeypatch, tmp_path):
    """With rewind, retraining starts from the baseline's epoch-k weights and buffers with the final weights' mask
    applied, at epoch k of the schedule; without, from the pruned trained weights at epoch 0."""
    from unlearnbench.nn import pruning
    from unlearnbench.steps import training
    from unlearnbench.datasets.experiment import ExperimentData

    recipe = {"model": random_setup.training["model"],
              "train": {**random_setup.training["train"], "epochs": 4}}
    base, early = tmp_path / "base.pt", tmp_path / "rewind.pt"
    training.train_baseline(experiment=str(random_setup.data), model=str(base), training=recipe, seed=0,
                            device="cpu", threads=1, rewind=str(early), rewind_epoch=2, log=str(tmp_path / "log"))
    data = ExperimentData.load(str(random_setup.data))
    dense, _ = training.load_model(str(base), data, torch.device("cpu"))
    epoch2, meta2 = training.load_model(str(early), data, torch.device("cpu"))
    assert meta2["epoch"] == 2 and any(not torch.equal(a, b) for a, b in
                                       zip(dense.state_dict().values(), epoch2.state_dict().values()))
    masks = pruning.global_magnitude_masks(pruning.conv_weights(dense), 0.9)  # from the *final* weights
    starts = []
    real_train = engine.train

    def spy(net, *args, **kw):
        starts.append(({k: v.clone() for k, v in net.state_dict().items()}, kw.get("first_epoch", 0)))
        return real_train(net, *args, **kw)

    monkeypatch.setattr(engine, "train", spy)
    for rewind in (True, False):
        meta = training.train_sparse_baseline(
            experiment=str(random_setup.data), dense=str(base), model=str(tmp_path / f"sparse_{rewind}.pt"),
            training=recipe, sparsity=0.9, epochs=4, seed=0, device="cpu", threads=1,
            rewind=str(early) if rewind else None, rewind_epoch=2 if rewind else None, log=str(tmp_path / "log"))
        state, first = starts[-1]
        source = epoch2 if rewind else dense
        conv = dict(zip(pruning.conv_weight_names(source), masks))
        for name, value in source.state_dict().items():
            expected = value * conv[name] if name in conv else value
            assert torch.equal(state[name], expected), (rewind, name)
        assert first == (2 if rewind else 0) and meta["retrain_epochs"] == (2 if rewind else 4)
        assert [h["epoch"] for h in meta["history"]] == ([3, 4] if rewind else [1, 2, 3, 4])
    with pytest.raises(ValueError, match="rewind_epoch"):
        training.train_sparse_baseline(experiment=str(random_setup.data), dense=str(base),
                                       model=str(tmp_path / "bad.pt"), training=recipe, sparsity=0.9, epochs=2, seed=0,
                                       device="cpu", threads=1, rewind=str(early), rewind_epoch=2,
                                       log=str(tmp_path / "log"))


def test_sgd_knobs_keep_the_last_short_batch():
    """Unlearn-Sparse's DataLoaders keep the last short batch; so do the methods that train with engine.train."""
    cfg = REGISTRY["finetune"].Knobs().train_config()
    assert cfg.drop_last is False and cfg.batch_size == 256 and cfg.schedule == "constant"


# ---------------------------------------------------------------------------------------------- IF scale

def test_power_iteration_finds_the_top_hessian_eigenvalue():
    """IF's automatic LiSSA scale: power iteration on Hessian-vector products against the exact Hessian's spectrum."""
    from unlearnbench.methods.influence import hessian_vector_product, top_eigenvalue

    torch.manual_seed(0)
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    model = torch.nn.Linear(5, 3)
    params = list(model.parameters())
    loss = lambda: F.cross_entropy(model(x), y) + 0.01 * sum((p ** 2).sum() for p in params)  # noqa: E731
    n = sum(p.numel() for p in params)
    columns = []
    for i in range(n):
        e = torch.zeros(n)
        e[i] = 1
        pieces = list(torch.split(e, [p.numel() for p in params]))
        hv = hessian_vector_product(loss(), params, [t.view_as(p) for t, p in zip(pieces, params)])
        columns.append(torch.cat([h.reshape(-1) for h in hv]))
    exact = float(torch.linalg.eigvalsh(torch.stack(columns, 1)).max())
    estimate = top_eigenvalue(loss, params, torch.Generator().manual_seed(1), iters=200)
    assert estimate == pytest.approx(exact, rel=1e-3)
    assert REGISTRY["influence"].Knobs().scale == 0.0  # the default: 1.2 × this estimate
