"""JiT's comparison methods (ours: methods/ssd.py, amnesiac.py, bad_teacher.py, unsir.py, emmn.py, gkt.py,
boundary_shrink.py) against the reference code on identical inputs.

References (outside the project, called unchanged; nothing of them is part of unlearnbench):
  JiT     jwf40/Information-Theoretic-Unlearning @ c96761408b4997381c2feab4fbe613aa4c1f2b12, src/ (JIT_REF_SRC,
          default /tmp/ref/jit/itu/src): unlearn.py, ssd.py, gkt.py, forget_full_class_strategies.py
  SSD     if-loops/selective-synaptic-dampening @ cdfdc0e35c1908e032a6e150d882b0fa17833f85, src/ssd.py (SSD_REF_SRC)
  BDSH    TY-LEE-KR/Boundary-Unlearning-Code @ 19f9f230d3dccbad2ffd7d65e279eb7ac0dbbca9 (BDSH_REF_SRC):
          boundary_unlearning.py, adv_generator.py
Stubs for the references' unused imports (wandb, transformers, seaborn) come from the JiT harness of the research
notes (JIT_HARNESS, default /tmp/ref/jit/harness). Re-create a checkout with `git --git-dir=<mirror> archive <commit>`.

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
HARNESS = os.environ.get("JIT_HARNESS", "/tmp/ref/jit/harness")
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


def jit_reference():
    sys.path.insert(0, HARNESS)
    import jit_ref_harness

    jit_ref_harness._install_stubs()
    if JIT_SRC not in sys.path:
        sys.path.insert(0, JIT_SRC)
    with contextlib.redirect_stdout(io.StringIO()):
        import forget_full_class_strategies as strategies
        import gkt as ref_gkt
        import unlearn as ref_unlearn
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


def report(name, diff, change, extra=""):
    print(f"{name:16s} max |Δweights| {diff:.3e}  (largest weight change by the method {change:.3e}){extra}",
          flush=True)


def split(x, y):
    f = y == FORGET
    return (x[f], y[f]), (x[~f], y[~f])


# ------------------------------------------------------------------------------------------------ methods

def check_ssd():
    model0, x, y = trained_model()
    (xf, yf), (xr, yr) = split(x, y)
    knobs = {"alpha": 10.0, "dampening": 1.0, "batch_size": 128, "shuffle_full": False}
    mine = copy.deepcopy(model0)
    batches = ours("ssd", knobs, mine, (xf, yf), (xr, yr))
    n_f = -(-len(xf) // 128)
    forget_batches, full_batches = batches[:n_f], batches[n_f:]
    x_full, y_full = torch.cat([xr, xf]), torch.cat([yr, yf])
    sys.path.insert(0, HARNESS)
    import jit_ref_harness

    jit_ref_harness._install_stubs()
    for label, path in (("JiT src/ssd.py", f"{JIT_SRC}/ssd.py"), ("SSD src/ssd.py", f"{SSD_SRC}/ssd.py")):
        with contextlib.redirect_stdout(io.StringIO()):
            ssd = load_module(f"ref_ssd_{len(label)}_{label[0]}", path)
        ref = copy.deepcopy(model0).eval()
        params = {"lower_bound": 1, "exponent": 1, "magnitude_diff": None, "min_layer": -1, "max_layer": -1,
                  "forget_threshold": 1, "dampening_constant": knobs["dampening"],
                  "selection_weighting": knobs["alpha"]}
        with contextlib.redirect_stdout(io.StringIO()):
            pdr = ssd.ParameterPerturber(ref, torch.optim.SGD(ref.parameters(), lr=0.1), "cpu", params)
            fimp = pdr.calc_importance([(xf[b], None, yf[b]) for b in forget_batches])
            oimp = pdr.calc_importance([(x_full[b], None, y_full[b]) for b in full_batches])
            pdr.modify_weight(oimp, fimp)
        report(f"SSD ({label})", max_diff(mine, ref), moved(ref, model0.state_dict()))


def check_amnesiac():
    _, ref_unlearn, _ = jit_reference()
    import unlearnbench.methods.amnesiac as amn

    model0, x, y = trained_model()
    (xf, yf), (xr, yr) = split(x, y)
    knobs = {"epochs": 3, "lr": 1e-4, "batch_size": 128}
    seen = {}
    images = amn.images
    amn.images = lambda model, xs, ys: (seen.update(x=xs, y=ys), images(model, xs, ys))[1]
    try:
        mine = copy.deepcopy(model0)
        batches = ours("amnesiac", knobs, mine, (xf, yf), (xr, yr))
    finally:
        amn.images = images
    xa, ya = seen["x"], seen["y"]
    assert (ya[:len(xf)] != yf).all()  # every forget label is wrong
    per_epoch = len(batches) // knobs["epochs"]
    epochs = [[(xa[b], ya[b], ya[b]) for b in batches[e * per_epoch:(e + 1) * per_epoch]]
              for e in range(knobs["epochs"])]
    ref = copy.deepcopy(model0)
    with contextlib.redirect_stdout(io.StringIO()):
        ref_unlearn.fit_one_unlearning_cycle(knobs["epochs"], ref, Replay(epochs), [(xr[:8], yr[:8], yr[:8])],
                                             lr=knobs["lr"], device="cpu")
    report("AMN", max_diff(mine, ref), moved(ref, model0.state_dict()))


def check_bad_teacher():
    _, ref_unlearn, _ = jit_reference()
    model0, x, y = trained_model()
    (xf, yf), (xr, yr) = split(x, y)
    torch.manual_seed(1)
    from unlearnbench.nn.models import build_model

    incompetent = build_model("small_cnn", in_channels=3, n_classes=10, mean=model0.normalize.mean.flatten().div(255)
                              .tolist(), std=model0.normalize.std.flatten().div(255).tolist(), width=16)
    knobs = {"epochs": 2, "lr": 1e-4, "batch_size": 256, "retain_fraction": 0.3}
    mine = copy.deepcopy(model0)
    batches = ours("bad_teacher", knobs, mine, (xf, yf), (xr, yr), model_factory=lambda: copy.deepcopy(incompetent))
    keep = torch.randperm(len(xr), generator=torch.Generator().manual_seed(SEED))[:int(0.3 * len(xr))]
    xs = torch.cat([xf, xr[keep]])
    tags = torch.cat([torch.ones(len(xf)), torch.zeros(len(keep))])
    student = copy.deepcopy(model0).train()
    teacher = copy.deepcopy(model0).eval()
    bad = copy.deepcopy(incompetent).eval()
    optimizer = torch.optim.Adam(student.parameters(), lr=knobs["lr"])
    per_epoch = len(batches) // knobs["epochs"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for e in range(knobs["epochs"]):
            ref_unlearn.unlearning_step(student, bad, teacher, [(xs[b], tags[b]) for b in
                                                                batches[e * per_epoch:(e + 1) * per_epoch]],
                                        optimizer, "cpu", 1)
    report("BT", max_diff(mine, student), moved(student, model0.state_dict()))


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


def check_unsir():
    _, ref_unlearn, _ = jit_reference()
    import unlearnbench.methods.unsir as unsir

    model0, x, y = trained_model()
    (xf, yf), (xr, yr) = split(x, y)
    knobs = {"noise_steps": 25, "noise_copies": 10, "samples_per_class": 50}
    calls, restore = _record_adam_calls(unsir)
    opt_noise = unsir.optimise_noise
    noises = []
    unsir.optimise_noise = lambda *a, **k: noises.append(opt_noise(*a, **k)) or noises[-1]
    try:
        mine = copy.deepcopy(model0)
        ours("unsir", knobs, mine, (xf, yf), (xr, yr))
    finally:
        restore()
        unsir.optimise_noise = opt_noise
    noise0 = torch.randn((32, 3, 8, 8), generator=torch.Generator().manual_seed(SEED))
    ref = Normalised(copy.deepcopy(model0)).train()
    noise = ref_unlearn.UNSIR_noise(32, 3, 8, 8)
    noise.noise.data.copy_(noise0)
    with contextlib.redirect_stdout(io.StringIO()):
        ref_unlearn.UNSIR_noise_train(noise, ref, FORGET, knobs["noise_steps"], 32, device="cpu")
    d_noise = (noises[0] - noise.noise.detach()).abs().max().item()
    val = [(ref.inner.normalize(xr[:8]), yr[:8], yr[:8])]
    for call in calls:  # impair, then repair
        _reference_adam(ref_unlearn, ref, call, val)
    report("UNSIR", max_diff(mine, ref), moved(ref, model0.state_dict()),
           f"; noise after {knobs['noise_steps']} steps: max |Δ| {d_noise:.3e} (noise scale "
           f"{noise.noise.abs().max().item():.2f})")


def check_emmn():
    _, ref_unlearn, _ = jit_reference()
    import unlearnbench.methods.emmn as emmn

    model0, x, y = trained_model()
    (xf, yf), _ = split(x, y)
    knobs = {"noise_copies": 5, "epochs": 2}
    calls, restore = _record_adam_calls(emmn)
    opt_noise = emmn.optimise_noise
    noises = []
    emmn.optimise_noise = lambda *a, **k: noises.append(opt_noise(*a, **k)) or noises[-1]
    try:
        mine = copy.deepcopy(model0)
        ours("emmn", knobs, mine, (xf, yf))
    finally:
        restore()
        emmn.optimise_noise = opt_noise
    gen = torch.Generator().manual_seed(SEED)
    inits = [torch.randn((4, 3, 8, 8), generator=gen) for _ in range(10)]  # forget first, then classes 0..9 but 3
    ref = Normalised(copy.deepcopy(model0)).train()
    ref_noises = []
    with contextlib.redirect_stdout(io.StringIO()):
        module = ref_unlearn.UNSIR_noise(4, 3, 8, 8)
        module.noise.data.copy_(inits[0])
        ref_noises.append(ref_unlearn.UNSIR_noise_train(module, ref, FORGET, 25, 4, device="cpu").noise.detach())
        for init, c in zip(inits[1:], [c for c in range(10) if c != FORGET]):
            module = ref_unlearn.UNSIR_noise(4, 3, 8, 8)
            module.noise.data.copy_(init)
            ref_noises.append(ref_unlearn.emmn_noise_train(module, ref, c, 30, 4, device="cpu").noise.detach())
    d_noise = max((a - b).abs().max().item() for a, b in zip(noises, ref_noises))
    _reference_adam(ref_unlearn, ref, calls[0], [(ref.inner.normalize(xf[:4]), yf[:4], yf[:4])])
    report("EMMN", max_diff(mine, ref), moved(ref, model0.state_dict()),
           f"; the 10 noise tensors: max |Δ| {d_noise:.3e}")


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
           " (reference fed inputs in its own normalisation: float rounding of that round trip only)")


CHECKS = {"ssd": check_ssd, "amnesiac": check_amnesiac, "bad_teacher": check_bad_teacher, "unsir": check_unsir,
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
