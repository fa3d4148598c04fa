"""JiT's comparison methods (ours: methods/ssd.py, amnesiac.py, bad_teacher.py, unsir.py, emmn.py, gkt.py,
boundary_shrink.py) against the reference code on identical inputs.

References (outside the project, called unchanged; nothing of them is part of unlearnbench):
  JiT     jwf40/Information-Theoretic-Unlearning @ c96761408b4997381c2feab4fbe613aa4c1f2b12, src/ (JIT_REF_SRC,
          default /tmp/ref/jit/itu/src): unlearn.py, ssd.py, gkt.py, forget_full_class_strategies.py
  SSD     if-loops/selective-synaptic-dampening @ cdfdc0e35c1908e032a6e150d882b0fa17833f85, src/ssd.py (SSD_REF_SRC)
  BDSH    TY-LEE-KR/Boundary-Unlearning-Code @ 19f9f230d3dccbad2ffd7d65e279eb7ac0dbbca9 (BDSH_REF_SRC):
          boundary_unlearning.py, adv_generator.py
Stubs for the references' unused imports (wandb, transformers) are installed by `install_stubs` below. Re-create a
checkout with `git --git-dir=<mirror> archive c967614 src | tar -x -C /tmp/ref/jit/itu`.

UNSIR and EMMN are checked by calling the reference's own `UNSIR` / `emmn` (src/forget_full_class_strategies.py)
whole, as its main calls them, on loaders of our data: only its random draws are replaced by ours (the noise
initialisations, through a subclass of its `UNSIR_noise`, and each shuffled loader's permutation, through a
DataLoader that replays the permutation ours drew and checks that ours split it into the same batches). Its
closing `get_metric_scores` fits `LogisticRegression(multi_class="multinomial")`, which scikit-learn >= 1.8
rejects: run these two with scikit-learn 1.5 first on the path (`pip install --target /tmp/sk15 scikit-learn==1.5.2`,
`PYTHONPATH=/tmp/sk15:src`); the returned MIA is then also compared with ours (`evaluation.metrics.mia_lr_entropy`).

The model is a small CNN (ours, with batch norm, 3 channels, 8x8) trained for a few epochs on scikit-learn's digits;
forget set: class 3. Ours runs first with ctx.generator seeded; every random choice it makes (labels, the retain
subset, noise initialisations, mini-batch orders, z) is recorded or regenerated from the same seed and handed to the
reference, which then runs its own loop: its loss, optimiser, update order. Prints the max abs difference of the
final weights (and of intermediate quantities where the method has them) per method.

  PYTHONPATH=src python benchmarks/reference_baselines.py            # all (CPU, ~3 min)
  PYTHONPATH=src python benchmarks/reference_baselines.py --only ssd
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import os
import subprocess
import sys
import warnings

import numpy as np
import torch
from torch import nn

JIT_SRC = os.environ.get("JIT_REF_SRC", "/tmp/ref/jit/itu/src")
SSD_SRC = os.environ.get("SSD_REF_SRC", "/tmp/ref/jit/ssdrepo/src")
BDSH_SRC = os.environ.get("BDSH_REF_SRC", "/tmp/ref/jit/bdsh")
CPU = torch.device("cpu")
SEED = 3
FORGET = 3


# ------------------------------------------------------------------------------------------------ helpers

def load_module(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _stub_attribute(anything):
    def attribute(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return anything
    return attribute


def install_stubs():
    """Empty stand-ins for the references' imports that their methods never use (wandb logging, transformers' ViT)."""
    import types

    class Anything:
        def __init__(self, *a, **k):
            pass

        def __call__(self, *a, **k):
            return Anything()

        def __getattr__(self, name):
            return Anything()

    for name in ("wandb", "transformers"):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__getattr__ = _stub_attribute(Anything)
            sys.modules[name] = module


def jit_reference(src: str = JIT_SRC):
    install_stubs()
    if src not in sys.path:
        sys.path.insert(0, src)
    with contextlib.redirect_stdout(io.StringIO()):
        import forget_full_class_strategies as strategies
        import unlearn as ref_unlearn
        ref_gkt = importlib.import_module("gkt") if os.path.exists(os.path.join(src, "gkt.py")) else None
    return strategies, ref_unlearn, ref_gkt


class Normalised(nn.Module):
    """The model as the references see it when their inputs are already normalised (noise, generated images)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner.forward_normalized(x)


def trained_model():
    """small_cnn (3 channels) trained 15 epochs on digits (8x8, grey replicated to RGB); its uint8 images/labels."""
    from sklearn.datasets import load_digits

    from unlearnbench.nn import engine
    from unlearnbench.nn.models import build_model

    digits = load_digits()
    x = torch.from_numpy(np.round(digits.images / 16 * 255).astype(np.uint8))[:, None].repeat(1, 3, 1, 1)
    y = torch.from_numpy(digits.target).long()
    mean = (x.float() / 255).mean((0, 2, 3)).tolist()
    std = (x.float() / 255).std((0, 2, 3)).tolist()
    torch.manual_seed(0)
    model = build_model("small_cnn", in_channels=3, n_classes=10, mean=mean, std=std, width=16)
    engine.train(model, x, y, engine.TrainConfig(epochs=15, batch_size=128, lr=0.05), generator=torch.Generator()
                 .manual_seed(0), log=lambda s: None)
    return model.eval(), x, y


class Recorder:
    """Records the index tensors engine.batches yields (every mini-batch order a method draws)."""

    def __init__(self):
        self.batches: list[torch.Tensor] = []

    def __enter__(self):
        from unlearnbench.nn import engine
        from unlearnbench.core.lazy import _LazyModule

        # the module and the lazy stand-ins the methods hold for it (which cache its attributes)
        self.targets = {id(engine): engine}
        for module in list(sys.modules.values()):
            proxy = getattr(module, "engine", None)
            if isinstance(proxy, _LazyModule):
                self.targets[id(proxy)] = proxy
        self.saved = {key: t.__dict__.get("batches") for key, t in self.targets.items()}
        original = engine.batches

        def batches(*args, **kwargs):
            for idx in original(*args, **kwargs):
                self.batches.append(idx.clone())
                yield idx
        for t in self.targets.values():
            t.batches = batches
        return self

    def __exit__(self, *exc):
        for key, t in self.targets.items():
            if self.saved[key] is None:
                del t.batches
            else:
                t.batches = self.saved[key]
        return False


class Replay:
    """A 'loader' for the reference: every iteration (epoch) yields the next epoch's recorded batches."""

    def __init__(self, epochs):
        self.epochs = list(epochs)
        self.n = len(self.epochs[0]) if self.epochs else 0

    def __len__(self):
        return self.n

    def __iter__(self):  # past the recorded epochs (a reference's own evaluation pass), the last one again
        return iter(self.epochs.pop(0) if len(self.epochs) > 1 else self.epochs[0])


def ours(name, knobs, model, forget, retain=None, model_factory=None, n_classes=10):
    from unlearnbench.methods import UnlearnContext, UnlearnData, build_method

    sets = {"forget": forget} if retain is None else {"forget": forget, "retain": retain}
    method = build_method(name, knobs)
    data = UnlearnData(declared=method.reads, n_classes=n_classes, **{k: v for k, v in sets.items()
                                                                       if k in method.reads})
    ctx = UnlearnContext(CPU, torch.Generator().manual_seed(SEED), log=lambda s: None, model_factory=model_factory)
    with Recorder() as rec:
        method.unlearn(model, data, ctx)
    return rec.batches


def max_diff(a: nn.Module, b: nn.Module) -> float:
    sa, sb = a.state_dict(), {k.removeprefix("inner."): v for k, v in b.state_dict().items()}
    return max((sa[k].float() - sb[k].float()).abs().max().item() for k in sa if sa[k].is_floating_point())


def moved(a: nn.Module, start: dict) -> float:
    now = {k.removeprefix("inner."): v for k, v in a.state_dict().items()}
    return max((v.float() - start[k].float()).abs().max().item() for k, v in now.items() if v.is_floating_point())


def moved_parameters(a: nn.Module, start: nn.Module) -> float:
    """Largest change of a trainable parameter (the state dict's change also counts batch-norm running statistics)."""
    return max((p.detach() - q.detach()).abs().max().item() for p, q in zip(a.parameters(), start.parameters()))


def report(name, diff, change, extra=""):
    print(f"{name:16s} max |Δweights| {diff:.3e}  (largest weight change by the method {change:.3e}){extra}",
          flush=True)


def split(x, y):
    f = y == FORGET
    return (x[f], y[f]), (x[~f], y[~f])


# ------------------------------------------------------------------------------------------------ methods

def incompetent_teacher(model0):
    """A freshly initialised small_cnn of the model's shape (seed 1): BT's incompetent teacher."""
    from unlearnbench.nn.models import build_model

    torch.manual_seed(1)
    return build_model("small_cnn", in_channels=3, n_classes=10, mean=model0.normalize.mean.flatten().div(255)
                       .tolist(), std=model0.normalize.std.flatten().div(255).tolist(), width=16)


def check_ssd(src: str, label: str):
    """`ssd_tuning` of src/forget_full_class_strategies.py called whole (JiT's copy, or the SSD repository's own),
    with JiT's full-class values α 10, λ 1 on an unshuffled forget loader of 128 and a shuffled full-data loader
    (ours: `shuffle_full`, its permutation replayed; the full set listed retain then forget, as ours lists it)."""
    strategies, ref_unlearn, _ = jit_reference(src)
    model0, x, y = trained_model()
    (xf, yf), (xr, yr) = split(x, y)
    mine = copy.deepcopy(model0)
    batches = ours("ssd", {"alpha": 10.0, "dampening": 1.0}, mine, (xf, yf), (xr, yr))
    n_f = -(-len(xf) // 128)
    retain_train, forget_train = triples(model0, xr, yr), triples(model0, xf, yf)
    replay = ReplayedShuffle([{"batches": batches[n_f:], "epochs": 1}])
    assert torch.equal(torch.cat(batches[:n_f]), torch.arange(len(xf)))  # ours: D_f in order, as the reference
    full_train_dl = replay(retain_train + forget_train, batch_size=128, shuffle=True)
    ref = Normalised(copy.deepcopy(model0)).train()
    teacher = Normalised(incompetent_teacher(model0))  # read only by the SSD repository's closing ZRF score
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        scores = whole(strategies.ssd_tuning, ref, teacher, **reference_loaders(retain_train, forget_train),
                       dampening_constant=1.0, selection_weighting=10.0, full_train_dl=full_train_dl, device="cpu")
    assert replay.replayed == 1
    report(f"SSD whole ({label})", max_diff(mine, ref), moved(ref, model0.state_dict()),
           mia_beside(scores, mine, xr, xf, index=3 if len(scores) == 5 else 2))  # the SSD repository adds ZRF


def check_amnesiac():
    """JiT's `amnesiac` called whole: its random.choice labels replaced by ours, its shuffles by our permutations."""
    strategies, ref_unlearn, _ = jit_reference()
    import unlearnbench.methods.amnesiac as amn

    model0, x, y = trained_model()
    (xf, yf), (xr, yr) = split(x, y)
    seen = {}
    images = amn.images
    amn.images = lambda model, xs, ys: (seen.update(x=xs, y=ys), images(model, xs, ys))[1]
    calls, restore = _record_adam_calls(amn)
    try:
        mine = copy.deepcopy(model0)
        ours("amnesiac", {}, mine, (xf, yf), (xr, yr))  # the reference's values: 3 epochs, lr 1e-4, batch 128
    finally:
        amn.images = images
        restore()
    wrong = seen["y"][:len(xf)].tolist()
    assert all(w != FORGET for w in wrong)
    ref = Normalised(copy.deepcopy(model0)).train()
    retain_train, forget_train = triples(model0, xr, yr), triples(model0, xf, yf)
    replay = ReplayedShuffle(calls)
    choice = strategies.random.choice
    strategies.random.choice = lambda labels: (labels == [c for c in range(10) if c != FORGET] or 1 / 0) and \
        wrong.pop(0)
    try:
        with patched_loaders(replay, strategies, ref_unlearn), warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            scores = whole(strategies.amnesiac, ref, None, **reference_loaders(retain_train, forget_train),
                           num_classes=10, forget_class=FORGET, device="cpu")
    finally:
        strategies.random.choice = choice
    assert not wrong and not replay.calls
    report("AMN (whole)", max_diff(mine, ref), moved(ref, model0.state_dict()),
           f"; {replay.replayed} shuffled epochs replayed" + mia_beside(scores, mine, xr, xf))


def check_bad_teacher():
    """JiT's `blindspot` called whole: its random.sample replaced by our retain subset, its shuffle by ours, its
    incompetent teacher ours (the reference builds it in its main with the same constructor)."""
    strategies, ref_unlearn, _ = jit_reference()
    model0, x, y = trained_model()
    (xf, yf), (xr, yr) = split(x, y)
    incompetent = incompetent_teacher(model0)
    knobs = {}  # the reference's values: 1 epoch, lr 1e-4, batch 256, 30% of D_r, τ 1, F.kl_div 'mean'
    mine = copy.deepcopy(model0)
    batches = ours("bad_teacher", knobs, mine, (xf, yf), (xr, yr), model_factory=lambda: copy.deepcopy(incompetent))
    keep = torch.randperm(len(xr), generator=torch.Generator().manual_seed(SEED))[:int(0.3 * len(xr))]
    retain_train, forget_train = triples(model0, xr, yr), triples(model0, xf, yf)
    replay = ReplayedShuffle([{"batches": batches, "epochs": 1}])
    students = []
    real_deepcopy, real_sample = strategies.deepcopy, strategies.random.sample

    def sample(population, k):
        assert population is retain_train and k == len(keep)
        return [population[i] for i in keep.tolist()]
    strategies.deepcopy = lambda m: students.append(real_deepcopy(m)) or students[-1]
    strategies.random.sample = sample
    try:
        with patched_loaders(replay, strategies, ref_unlearn), warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            scores = whole(strategies.blindspot, Normalised(copy.deepcopy(model0)).train(),
                           Normalised(copy.deepcopy(incompetent)), **reference_loaders(retain_train, forget_train),
                           device="cpu", model_name="VGG")
    finally:
        strategies.deepcopy, strategies.random.sample = real_deepcopy, real_sample
    assert not replay.calls and len(students) == 1
    report("BT (whole)", max_diff(mine, students[0]), moved(students[0], model0.state_dict()),
           f"; {replay.replayed} shuffled epochs replayed" + mia_beside(scores, mine, xr, xf))


def _record_adam_calls(module):
    """Wrap module.train_adam: record (n, batch function, epochs, lr) of every call, and the batches it draws."""
    calls = []
    original = module.train_adam

    def wrapper(model, n, batch, **kw):
        with Recorder() as rec:
            original(model, n, batch, **kw)
        calls.append({"batch": batch, "epochs": kw["epochs"], "lr": kw["lr"], "batches": rec.batches})
    module.train_adam = wrapper
    return calls, lambda: setattr(module, "train_adam", original)


def _reference_adam(ref_unlearn, ref_model, call, val):
    per_epoch = len(call["batches"]) // call["epochs"]
    epochs = []
    for e in range(call["epochs"]):
        epoch = []
        for b in call["batches"][e * per_epoch:(e + 1) * per_epoch]:
            xb, yb = call["batch"](b)
            epoch.append((xb, yb, yb))
        epochs.append(epoch)
    with contextlib.redirect_stdout(io.StringIO()):
        ref_unlearn.fit_one_unlearning_cycle(call["epochs"], ref_model, Replay(epochs), val, lr=call["lr"],
                                             device="cpu")


class ReplayedShuffle:
    """Stands in for torch's DataLoader in the reference modules: a shuffled loader replays, epoch by epoch, the
    permutations ours drew for the same call (in call order), and checks that ours cut each permutation into the
    batches a DataLoader of that batch size cuts it into; an unshuffled loader is torch's own."""

    def __init__(self, calls):
        self.calls = list(calls)  # per train_adam call of ours: its batches, epochs

    def __call__(self, dataset, batch_size=1, shuffle=False, **kw):
        if not shuffle:
            return REAL_LOADER(dataset, batch_size=batch_size, **kw)
        call = self.calls.pop(0)
        per_epoch = len(call["batches"]) // call["epochs"]
        epochs = [call["batches"][e * per_epoch:(e + 1) * per_epoch] for e in range(call["epochs"])]
        outer = self

        class Loader:
            def __init__(self):
                self.dataset = dataset

            def __len__(self):
                return per_epoch

            def __iter__(self):
                batches = epochs.pop(0)
                perm = torch.cat(batches)
                assert len(dataset) == len(perm) and torch.equal(perm.sort().values, torch.arange(len(perm))), \
                    f"ours drew {len(perm)} items, the reference's set holds {len(dataset)}"
                sizes = [len(b) for b in batches]
                expect = [min(batch_size, len(perm) - i) for i in range(0, len(perm), batch_size)]
                assert sizes == expect, f"ours cut batches {sizes[:3]}..., a DataLoader {expect[:3]}..."
                outer.replayed += 1
                return iter(REAL_LOADER(dataset, batch_size=batch_size, sampler=perm.tolist()))

        return Loader()

    replayed = 0


REAL_LOADER = torch.utils.data.DataLoader


class patched_loaders:
    """Every DataLoader name the reference's UNSIR/emmn reach (its modules' and torch.utils.data's) -> `loader`."""

    def __init__(self, loader, *modules):
        self.loader, self.modules = loader, modules

    def __enter__(self):
        for m in self.modules:
            m.DataLoader = self.loader
        torch.utils.data.DataLoader = self.loader

    def __exit__(self, *exc):
        for m in self.modules:
            m.DataLoader = REAL_LOADER
        torch.utils.data.DataLoader = REAL_LOADER
        return False


def seeded_noise(ref_unlearn, inits):
    """The reference's UNSIR_noise whose N(0, I) draw is replaced by ours (the next of `inits`)."""

    class SeededNoise(ref_unlearn.UNSIR_noise):
        def __init__(self, *dim):
            super().__init__(*dim)
            init = inits.pop(0)
            assert tuple(init.shape) == tuple(dim), (init.shape, dim)
            self.noise.data.copy_(init)
    return SeededNoise


def whole(function, *args, **kwargs):
    """A reference strategy function called whole; its closing get_metric_scores fits
    LogisticRegression(multi_class="multinomial"), which scikit-learn >= 1.8 rejects after the method has run: then
    the metrics are reported as not computed (the weights are compared all the same)."""
    try:
        return function(*args, **kwargs)
    except (TypeError, ValueError) as e:
        if "multi_class" not in str(e):
            raise
        return f"closing metrics not computed ({type(e).__name__}: {e}; run with scikit-learn 1.5 on the path)"


def reference_loaders(retain_train, forget_train):
    """The loaders the reference's strategy functions take, batch 128 unshuffled; its "valid" sets (read only, for
    its per-epoch evaluation and closing metrics) are the training sets here."""
    return dict(retain_train_dl=REAL_LOADER(retain_train, 128), retain_valid_dl=REAL_LOADER(retain_train, 128),
                forget_train_dl=REAL_LOADER(forget_train, 128), forget_valid_dl=REAL_LOADER(forget_train, 128),
                valid_dl=REAL_LOADER(retain_train + forget_train, 128))


def mia_beside(scores, mine, xr, xf, index: int = 2):
    """The reference's returned LR-entropy MIA (get_metric_scores: retain vs valid = retain + forget, on forget)
    beside ours (evaluation.metrics.mia_lr_entropy) on our weights; or why it was not computed."""
    from unlearnbench.evaluation.metrics import mia_lr_entropy

    if not isinstance(scores, tuple):
        return f"; {scores}"
    with torch.no_grad():
        logits = {k: mine.eval()(v).numpy() for k, v in (("r", xr), ("f", xf))}
    our_mia = mia_lr_entropy(logits["r"], np.concatenate([logits["r"], logits["f"]]), logits["f"], seed=0)
    return f"; reference MIA {scores[index]:.4f}, ours on our weights {our_mia:.4f}"


def triples(model, x, y):
    """The reference's datasets: (normalised image, label, class label) items."""
    with torch.no_grad():
        z = model.normalize(x)
    return [(z[i], int(y[i]), int(y[i])) for i in range(len(y))]


def whole_reference(name, knobs, inits_shape, n_inits):
    """Ours with `knobs`, then the reference's own full-class function `name` called whole on the same data with our
    random draws; prints the weight difference and the reference's returned metrics beside ours."""
    strategies, ref_unlearn, _ = jit_reference()
    import unlearnbench.methods.unsir as unsir_module
    import unlearnbench.methods.emmn as emmn_module
    module = unsir_module if name == "unsir" else emmn_module
    model0, x, y = trained_model()
    (xf, yf), (xr, yr) = split(x, y)
    calls, restore = _record_adam_calls(module)
    try:
        mine = copy.deepcopy(model0)
        ours(name, knobs, mine, (xf, yf), (xr, yr))
    finally:
        restore()
    gen = torch.Generator().manual_seed(SEED)  # ours draws its noise first from ctx.generator
    inits = [torch.randn(inits_shape, generator=gen) for _ in range(n_inits)]
    ref = Normalised(copy.deepcopy(model0)).train()  # as the reference's main leaves a loaded model
    retain_train, forget_train = triples(model0, xr, yr), triples(model0, xf, yf)
    loaders = reference_loaders(retain_train, forget_train)
    replay = ReplayedShuffle(calls)
    strategies.UNSIR_noise = seeded_noise(ref_unlearn, inits)
    with patched_loaders(replay, strategies, ref_unlearn), warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        function = strategies.UNSIR if name == "unsir" else strategies.emmn
        scores = whole(function, ref, None, num_classes=10, forget_class=FORGET, device="cpu", **loaders)
    assert not inits and not replay.calls, "the reference drew a different number of noise tensors or loaders"
    extra = f"; {replay.replayed} shuffled epochs replayed" + mia_beside(scores, mine, xr, xf)
    report(f"{name.upper()} (whole, {knobs or 'defaults'})", max_diff(mine, ref), moved(ref, model0.state_dict()),
           extra)
    # negative control: the paper's reading (every noise image in every copy) against the same reference run
    other = copy.deepcopy(model0)
    ours(name, {**knobs, "noise_per_copy": "batch"}, other, (xf, yf), (xr, yr))
    report(f"{name.upper()} noise_per_copy: batch", max_diff(other, ref), moved(other, model0.state_dict()),
           " (negative control: the reference's builder repeats only the first C = 3 noise images)")


def check_unsir():
    # the defaults: 32 noise images, 25 steps, 80 copies, 500 per class (digits: every retain image)
    whole_reference("unsir", {}, (32, 3, 8, 8), 1)


def check_emmn():
    whole_reference("emmn", {}, (4, 3, 8, 8), 10)


class WithActivations(nn.Module):
    """small_cnn as JiT's models return it for GKT (`return_activations=True`): (logits, [every Conv2d output]),
    walked layer by layer as the reference's VGG16.forward does."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        acts = []
        for layer in self.inner.features:
            if isinstance(layer, nn.Sequential):
                for sub in layer:
                    x = sub(x)
                    if isinstance(sub, nn.Conv2d):
                        acts.append(x)
            else:
                x = layer(x)
        return self.inner.head(x), acts


def check_gkt(k_batches: int):
    strategies, _, ref_gkt = jit_reference()
    import unlearnbench.methods.gkt as gkt

    class Stop(Exception):
        pass

    model0, x, y = trained_model()
    (xf, yf), _ = split(x, y)
    knobs = {}  # the reference's values: 1000 z batches of 128, 2 generator + 15 student steps, β 5, threshold 0.01
    one_cycle = gkt.one_cycle

    def stopping_one_cycle(step, total, max_lr):
        if step == k_batches * 15:
            raise Stop
        return one_cycle(step, total, max_lr)
    gkt.one_cycle = stopping_one_cycle
    mine = copy.deepcopy(model0).train()
    torch.manual_seed(5)
    try:
        ours("gkt", knobs, mine, (xf, yf))
    except Stop:
        pass
    finally:
        gkt.one_cycle = one_cycle

    gen = torch.Generator().manual_seed(SEED)
    queue = [torch.randn((128, 128), generator=gen) for _ in range(k_batches + 1)]
    real_randn = torch.randn

    def fake_randn(*size, **kw):
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else tuple(size)
        if shape == (128, 128) and "generator" not in kw:
            return queue.pop(0)
        return real_randn(*size, **kw)

    class StopBar:
        def __init__(self, total):
            self.n = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, k):
            self.n += k
            if self.n == k_batches:
                raise Stop

    sgds = []
    real_sgd = torch.optim.SGD

    class RecordingSGD(real_sgd):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            sgds.append(self)

    ref_model = WithActivations(copy.deepcopy(model0)).train()
    strategies.tqdm, torch.randn, torch.optim.SGD = StopBar, fake_randn, RecordingSGD
    torch.manual_seed(5)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            forget_valid = torch.utils.data.DataLoader([(xf[0].float(), 0, FORGET)])  # read for the image side only
            strategies.gkt(ref_model, None, None, None, None, forget_valid, None, 10, FORGET, "cpu")
    except Stop:
        pass
    finally:
        torch.randn, torch.optim.SGD = real_randn, real_sgd
    student = sgds[0].param_groups[0]["params"]
    diff = max((a - b).abs().max().item() for a, b in zip(mine.parameters(), student))
    change = max((a - b).abs().max().item() for a, b in zip(model0.parameters(), student))
    report("GKT", diff, change, f"  (first {k_batches} of 1000 z batches, {k_batches * 17} iterations)")


BDSH_MEAN = torch.tensor((0.4914, 0.4822, 0.2265)).view(1, 3, 1, 1)  # adv_generator.AttackBase's, typo included
BDSH_STD = torch.tensor((0.2023, 0.1994, 0.2010)).view(1, 3, 1, 1)


class TheirSpace(nn.Module):
    """Our model behind boundary_shrink's normalisation: input normalised with BDSH_MEAN / BDSH_STD."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, z):
        return self.inner((z * BDSH_STD + BDSH_MEAN) * 255.0)


def check_bdsh():
    sys.path.insert(0, BDSH_SRC)
    with contextlib.redirect_stdout(io.StringIO()):
        import adv_generator
        import boundary_unlearning
    from unlearnbench.methods.boundary_shrink import fgsm_neighbours

    model0, x, y = trained_model()
    (xf, yf), _ = split(x, y)

    # 1. the neighbour search: FGSM with norm=False on a model that takes [0, 1] pixels
    class Pixels(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, p):
            return self.inner(p * 255.0)

    pix = Pixels(copy.deepcopy(model0)).eval()
    xp = xf.float() / 255
    attack = adv_generator.FGSM(pix, bound=0.1, norm=False, random_start=False, device="cpu")
    ref_adv = attack.perturb(xp, yf, model=pix, device="cpu")
    ref_labels = pix(ref_adv).argmax(1)
    my_adv, my_labels = fgsm_neighbours(copy.deepcopy(model0).eval(), xp, yf, 0.1)
    print(f"{'BDSH FGSM':16s} max |Δx_adv| {(ref_adv - my_adv).abs().max().item():.3e}; neighbour labels equal on "
          f"{int((ref_labels == my_labels).sum())}/{len(yf)} (attack moved {int((my_labels != yf).sum())})",
          flush=True)

    # 2. the whole loop, boundary_shrink itself: its FGSM (norm=True) de-normalises with its hard-coded CIFAR-10
    # statistics, so it is handed inputs normalised with exactly those and a model that undoes them
    mean, std = BDSH_MEAN, BDSH_STD
    knobs = {"epochs": 10, "batch_size": 64, "lr": 1e-5, "bound": 0.1}
    mine = copy.deepcopy(model0)
    batches = ours("boundary_shrink", knobs, mine, (xf, yf))
    zf = (xf.float() / 255 - mean) / std
    per_epoch = len(batches) // knobs["epochs"]
    epochs = [[(zf[b], yf[b]) for b in batches[e * per_epoch:(e + 1) * per_epoch]] for e in range(knobs["epochs"])]
    held = [(zf[i], int(yf[i])) for i in range(16)] + [(zf[0], (FORGET + 1) % 10)] * 16
    ref = TheirSpace(copy.deepcopy(model0))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        out = boundary_unlearning.boundary_shrink(ref, Replay(epochs), held, held, [(zf[:8], yf[:8])], "cpu",
                                                  evaluate=False, poison_epoch=knobs["epochs"],
                                                  forget_class=FORGET, path="/tmp/bdsh_reference_")
    report("BDSH loop", max_diff(mine, out), moved(out, model0.state_dict()),
           f" (reference fed inputs in its own normalisation: float rounding of that round trip only); of the change,"
           f" trainable parameters moved at most {moved_parameters(out.inner, model0):.1e}, the rest is batch-norm"
           f" running statistics (train mode)")


CHECKS = {"ssd": lambda: check_ssd(JIT_SRC, "JiT src/forget_full_class_strategies.py"),
          "ssd_original": lambda: check_ssd(SSD_SRC, "SSD src/forget_full_class_strategies.py"), "amnesiac": check_amnesiac, "bad_teacher": check_bad_teacher, "unsir": check_unsir,
          "emmn": check_emmn, "gkt": lambda: check_gkt(int(os.environ.get("GKT_BATCHES", "20"))), "bdsh": check_bdsh}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=sorted(CHECKS))
    args = parser.parse_args()
    if args.only:
        torch.set_num_threads(1)
        CHECKS[args.only]()
        return
    for name in CHECKS:  # one process each: the reference repositories' module names collide (models, utils)
        subprocess.run([sys.executable, "-W", "ignore", __file__, "--only", name], check=True)


if __name__ == "__main__":
    main()
