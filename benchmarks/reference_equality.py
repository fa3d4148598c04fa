"""Our methods against the reference code, on identical inputs (docs/methods.md, "Reference comparisons").

Each method runs twice from the same weights: ours (unlearnbench.methods) and the reference function on the same data,
the same minibatches in the same order (the reference DataLoaders get a batch sampler that replays our permutations),
the same random labels and the same Gaussian noise (our generator is given the state of the reference's global
torch generator at the moment it draws). Printed per method: the reference file and commit, the knobs, and the
largest absolute difference of any weight (buffers too) afterwards; for the SVC MIA the two returned values.

Setup: the embedded default's digits data (random scenario, 10% forget request, data_seed 0) and its small CNN,
trained with the embedded recipe (seed 0); CPU, one thread.

The reference code is not part of this project. Give the checkouts:
  --unlearn-sparse DIR   OPTML-Group/Unlearn-Sparse at 80ba55d36d0871465c2d3e3896db26a98070e065, with
                         unlearn/RL_legacy.py = `git show 48d335ecfaf201af5671d1ca95e8f50281800c9b:unlearn/RL.py`
                         (the last revision that has RL)
  --scrub DIR            meghdadk/SCRUB at 98ffb1196ffbec2665092598c13ad3b6ec3d095d

  PYTHONPATH=src python benchmarks/reference_equality.py --unlearn-sparse /tmp/ref/us/Unlearn-Sparse \
      --scrub /tmp/ref/src/meghdadk+SCRUB [--json out.json] [--only ft,ga]
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import io
import json
import sys
import tempfile
import types
from argparse import Namespace
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

US_COMMIT = "80ba55d36d0871465c2d3e3896db26a98070e065"
RL_COMMIT = "48d335ecfaf201af5671d1ca95e8f50281800c9b"
SCRUB_COMMIT = "98ffb1196ffbec2665092598c13ad3b6ec3d095d"


# ------------------------------------------------------------------------------------------------ reference loading

def _stub_modules():
    """Unlearn-Sparse imports `imagenet` (HuggingFace datasets) and `einops` (swin) at module level; neither path is
    used here."""
    if "imagenet" not in sys.modules:
        stub = types.ModuleType("imagenet")

        def unavailable(*_a, **_k):
            raise RuntimeError("imagenet code path is not used by this comparison")

        stub.get_x_y_from_data_dict = stub.prepare_data = unavailable
        sys.modules["imagenet"] = stub
    try:
        import einops  # noqa: F401
    except ImportError:
        stub = types.ModuleType("einops")
        stub.rearrange = stub.repeat = lambda *_a, **_k: None
        sys.modules["einops"] = stub


@contextlib.contextmanager
def cuda_noop():
    """Their loops call tensor.cuda() unconditionally; on a CPU-only machine make it return the tensor itself."""
    if torch.cuda.is_available():
        yield
        return
    saved = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda = saved


@contextlib.contextmanager
def quiet():
    """Their progress prints and bars go nowhere."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def load_unlearn_sparse(root: str) -> dict:
    sys.path.insert(0, root)
    _stub_modules()
    mods = {name: importlib.import_module(name) for name in
            ("unlearn.fisher", "unlearn.GA", "unlearn.FT", "unlearn.RL_legacy", "evaluation.SVC_MIA")}
    return {"fisher_new": mods["unlearn.fisher"].fisher_new, "hessian": mods["unlearn.fisher"].hessian,
            "get_mean_var": mods["unlearn.fisher"].get_mean_var, "fisher": mods["unlearn.fisher"].fisher,
            "GA": mods["unlearn.GA"].GA, "FT": mods["unlearn.FT"].FT, "FT_l1": mods["unlearn.FT"].FT_l1,
            "RL": mods["unlearn.RL_legacy"].RL, "RL_module": mods["unlearn.RL_legacy"],
            "SVC_MIA": mods["evaluation.SVC_MIA"].SVC_MIA}


def load_scrub(root: str) -> dict:
    sys.path.insert(0, root)
    loops = importlib.import_module("thirdparty.repdistiller.helper.loops")
    util = importlib.import_module("thirdparty.repdistiller.helper.util")
    kd = importlib.import_module("thirdparty.repdistiller.distiller_zoo.KD")
    return {"train_distill": loops.train_distill, "adjust_learning_rate": util.adjust_learning_rate,
            "DistillKL": kd.DistillKL}


def us_args(**over) -> Namespace:
    """The fields the Unlearn-Sparse functions read, at their arg_parser defaults (80ba55d) unless given."""
    a = dict(unlearn_lr=0.01, unlearn_epochs=10, momentum=0.9, weight_decay=5e-4, decreasing_lr="91,136", warmup=0,
             lr=0.1, rewind_epoch=0, rewind_pth=None, imagenet_arch=False, arch="resnet18", unlearn="FT",
             print_freq=10 ** 9, batch_size=256, alpha=0.2, no_l1_epochs=0, num_classes=10, dataset="cifar10",
             num_indexes_to_replace=None, class_to_replace=0, gpu=0, seed=2, train_seed=1)
    a.update(over)
    return Namespace(**a)


# ------------------------------------------------------------------------------------------------ identical inputs

class Arrays(torch.utils.data.Dataset):
    """(uint8 image, label) pairs; `.targets` as a NumPy array as their RL relabelling needs."""

    def __init__(self, x, y):
        self.x, self.targets = x, y.numpy().copy()

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.x[i], int(self.targets[i])


class Replay(torch.utils.data.Sampler):
    """Batch sampler yielding engine.batches' permutations: each pass draws randperm(n) from a shared generator,
    cut into batch_size pieces with the last short one kept (what our methods iterate)."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator)
        for start in range(0, self.n, max(1, min(self.batch_size, self.n))):
            yield order[start:start + self.batch_size].tolist()

    def __len__(self):
        return -(-self.n // self.batch_size)


def replay_loader(x, y, batch_size, generator):
    return torch.utils.data.DataLoader(Arrays(x, y), batch_sampler=Replay(len(y), batch_size, generator))


def clone_generator(g: torch.Generator) -> torch.Generator:
    c = torch.Generator()
    c.set_state(g.get_state())
    return c


def max_weight_diff(a, b) -> float:
    """Largest |difference| over every parameter and buffer (batch-norm statistics and batch counters too)."""
    sa, sb = a.state_dict(), b.state_dict()
    return max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa if sa[k].numel())


def moved(a, b) -> float:
    """Largest parameter change: shows that the compared run did something."""
    return max(float((p.detach() - q.detach()).abs().max()) for p, q in zip(a.parameters(), b.parameters()))


class Setup:
    """The embedded default's digits data, random scenario, its baseline small CNN (seed 0)."""

    def __init__(self, work: Path):
        import yaml

        from unlearnbench.steps import training
        from unlearnbench.datasets import prepare_dataset
        from unlearnbench.datasets.experiment import ExperimentData, prepare_experiment
        from unlearnbench.scenarios import ForgetRequest, prepare_request
        from snakemake.utils import validate

        root = Path(__file__).resolve().parents[1]
        cfg = yaml.safe_load((root / "config.yaml").read_text())
        config = {"datasets": {"digits": cfg["datasets"]["digits"]}, "scenarios": {"random": {"fraction": 0.1}},
                  "methods": {"x": {"method": "jit"}}}
        validate(config, str(root / "config" / "schema.yaml"))
        ds = config["datasets"]["digits"]
        src = prepare_dataset("digits", work / "src", download_dir=work / "src" / "dl")
        prepare_experiment(source=str(src), experiment=str(work / "exp.npz"), manifest=str(work / "exp.json"),
                           dataset=ds, data_seed=0)
        prepare_request(experiment=str(work / "exp.npz"), request=str(work / "req.npz"),
                        definition=str(work / "req.json"), scenario="random",
                        options={"type": "random", "fraction": 0.1}, data_seed=0)
        self.training = {"model": ds["model"], "train": ds["train"]}
        training.train_baseline(experiment=str(work / "exp.npz"), model=str(work / "base.pt"),
                                training=self.training, seed=0, device="cpu", threads=1, log=str(work / "log"))
        self.data = ExperimentData.load(str(work / "exp.npz"))
        req = ForgetRequest.load(str(work / "req.npz"))
        self.model, _ = training.load_model(str(work / "base.pt"), self.data, torch.device("cpu"))
        from unlearnbench.nn import engine

        self.forget = engine.to_device(*req.forget_set(self.data), torch.device("cpu"))
        self.retain = engine.to_device(*req.retain_set(self.data), torch.device("cpu"))
        self.test = engine.to_device(self.data.images("test"), self.data.labels("test"), torch.device("cpu"))
        self.n_train = len(self.data.labels("train"))
        self.n_classes = self.data.n_classes

    def ours(self, method: str, knobs: dict, generator: torch.Generator, setting="standard", **kw):
        from unlearnbench.methods import UnlearnContext, UnlearnData, build_method

        m = build_method(method, knobs)
        model = copy.deepcopy(self.model)
        sets = {"forget": self.forget, "retain": self.retain}
        data = UnlearnData(declared=m.reads, n_train=self.n_train, n_classes=self.n_classes,
                           **{k: v for k, v in sets.items() if k in m.reads})
        m.unlearn(model, data, UnlearnContext(torch.device("cpu"), generator, log=lambda s: None))
        return model


def us_loaders(setup, retain=None, forget=None):
    dummy = replay_loader(setup.test[0][:1], setup.test[1][:1], 1, torch.Generator())
    return OrderedDict(retain=retain or dummy, forget=forget or dummy, val=dummy, test=dummy)


# ------------------------------------------------------------------------------------------------ comparisons

def cmp_finetune(setup, R, S):
    knobs = {"epochs": 2, "lr": 0.01, "batch_size": 256}
    g = torch.Generator().manual_seed(11)
    replay = clone_generator(g)
    ours = setup.ours("finetune", knobs, g)
    ref = copy.deepcopy(setup.model)
    with cuda_noop(), quiet():
        R["FT"](us_loaders(setup, retain=replay_loader(*setup.retain, 256, replay)), ref,
                torch.nn.CrossEntropyLoss(), us_args(unlearn="FT", unlearn_lr=0.01, unlearn_epochs=2))
    return {"reference": f"Unlearn-Sparse unlearn/FT.py FT (+ unlearn/impl.py) @ {US_COMMIT[:7]}", "knobs": knobs,
            "max_abs_weight_diff": max_weight_diff(ours, ref), "moved": moved(ours, setup.model)}


def cmp_l1_sparse(setup, R, S):
    knobs = {"epochs": 3, "lr": 0.01, "batch_size": 256, "gamma": 5e-4}
    g = torch.Generator().manual_seed(12)
    replay = clone_generator(g)
    ours = setup.ours("l1_sparse", knobs, g)
    ref = copy.deepcopy(setup.model)
    with cuda_noop(), quiet():
        R["FT_l1"](us_loaders(setup, retain=replay_loader(*setup.retain, 256, replay)), ref,
                   torch.nn.CrossEntropyLoss(), us_args(unlearn="FT_prune", unlearn_lr=0.01, unlearn_epochs=3,
                                                        alpha=5e-4))
    return {"reference": f"Unlearn-Sparse unlearn/FT.py FT_l1 (README's FT_prune) @ {US_COMMIT[:7]}", "knobs": knobs,
            "max_abs_weight_diff": max_weight_diff(ours, ref), "moved": moved(ours, setup.model)}


def cmp_gradient_ascent(setup, R, S):
    knobs = {"epochs": 3, "lr": 0.01, "batch_size": 32}  # larger steps than the README's 1e-4 so that it moves
    g = torch.Generator().manual_seed(13)
    replay = clone_generator(g)
    ours = setup.ours("gradient_ascent", knobs, g)
    ref = copy.deepcopy(setup.model)
    with cuda_noop(), quiet():
        R["GA"](us_loaders(setup, forget=replay_loader(*setup.forget, 32, replay)), ref, torch.nn.CrossEntropyLoss(),
                us_args(unlearn="GA", unlearn_lr=0.01, unlearn_epochs=3))
    return {"reference": f"Unlearn-Sparse unlearn/GA.py GA @ {US_COMMIT[:7]}", "knobs": knobs,
            "max_abs_weight_diff": max_weight_diff(ours, ref), "moved": moved(ours, setup.model)}


def cmp_random_label(setup, R, S):
    """Their legacy RL draws labels with np.random.randint and shuffles with a fresh DataLoader each epoch; both are
    replaced, for the duration of the call, by the labels and permutations our run drew."""
    knobs = {"epochs": 3, "lr": 0.01, "batch_size": 256}
    g = torch.Generator().manual_seed(14)
    replay = clone_generator(g)
    ours = setup.ours("random_label", knobs, g)
    n_f = len(setup.forget[1])
    module = R["RL_module"]
    real_randint, real_loader = np.random.randint, torch.utils.data.DataLoader
    drawn = []

    def randint(low, high, size):  # ours draws the epoch's labels from the generator, then its permutation
        labels = torch.randint(low, high, size, generator=replay).numpy()
        drawn.append(labels)
        return labels

    def loader(dataset, batch_size, shuffle):
        assert shuffle and len(dataset) == n_f + len(setup.retain[1])
        return real_loader(dataset, batch_sampler=Replay(len(dataset), batch_size, replay))

    ref = copy.deepcopy(setup.model)
    loaders = us_loaders(setup, retain=real_loader(Arrays(*setup.retain), batch_size=256),
                         forget=real_loader(Arrays(*setup.forget), batch_size=256))
    try:
        module.np.random.randint = randint
        torch.utils.data.DataLoader = loader
        with cuda_noop(), quiet():
            R["RL"](loaders, ref, torch.nn.CrossEntropyLoss(),
                    us_args(unlearn="RL", unlearn_lr=0.01, unlearn_epochs=3))
    finally:
        module.np.random.randint = real_randint
        torch.utils.data.DataLoader = real_loader
    return {"reference": f"Unlearn-Sparse unlearn/RL.py RL @ {RL_COMMIT[:7]} (legacy, per-epoch redraw)",
            "knobs": knobs, "max_abs_weight_diff": max_weight_diff(ours, ref),
            "moved": moved(ours, setup.model),
            "labels_differ_between_epochs": bool((drawn[0] != drawn[1]).any())}


def cmp_scrub(setup, R, S):
    """The large-scale notebook's SCRUB loop (cell 36) around train_distill, with its settings (cell 32)."""
    knobs = {"sgda_epochs": 3, "msteps": 2, "lr": 0.005, "alpha": 0.001, "gamma": 0.99, "batch_size": 128,
             "forget_batch_size": 32}
    g = torch.Generator().manual_seed(15)
    replay = clone_generator(g)
    ours = setup.ours("scrub", knobs, g)
    student, teacher = copy.deepcopy(setup.model), copy.deepcopy(setup.model)
    opt = Namespace(gamma=0.99, alpha=0.001, beta=0, distill="kd", kd_T=4, sgda_learning_rate=0.005,
                    lr_decay_epochs=[3, 5, 9], lr_decay_rate=0.1, print_freq=10 ** 9, msteps=2, sgda_epochs=3)
    module_list = torch.nn.ModuleList([student, teacher])
    criteria = torch.nn.ModuleList([torch.nn.CrossEntropyLoss(), S["DistillKL"](4), S["DistillKL"](4)])
    optimizer = torch.optim.SGD(torch.nn.ModuleList([student]).parameters(), lr=0.005, momentum=0.9,
                                weight_decay=5e-4)
    forget = replay_loader(*setup.forget, 32, replay)
    retain = replay_loader(*setup.retain, 128, replay)
    with quiet():
        for epoch in range(1, opt.sgda_epochs + 1):
            S["adjust_learning_rate"](epoch, opt, optimizer)
            if epoch <= opt.msteps:
                S["train_distill"](epoch, forget, module_list, None, criteria, optimizer, opt, "maximize")
            S["train_distill"](epoch, retain, module_list, None, criteria, optimizer, opt, "minimize")
    return {"reference": "SCRUB thirdparty/repdistiller/helper/loops.py train_distill, large_scale_unlearning.ipynb "
                         f"loop @ {SCRUB_COMMIT[:7]}", "knobs": knobs,
            "max_abs_weight_diff": max_weight_diff(ours, student), "moved": moved(ours, setup.model)}


def _global_state_after_loader_seed(seed: int) -> torch.Generator:
    """A generator in the state the global one has after manual_seed(seed) and one DataLoader iterator (which draws
    its base seed from the global generator)."""
    torch.manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_()
    g = torch.Generator()
    g.set_state(torch.get_rng_state())
    return g


def cmp_fisher(setup, R, S):
    knobs = {"alpha": 1e-6}  # their std clip is the constant 1e-3: the knob's default
    seed = 16
    ours = setup.ours("fisher", knobs, _global_state_after_loader_seed(seed))
    ref = copy.deepcopy(setup.model)
    torch.manual_seed(seed)
    with cuda_noop(), quiet():
        R["fisher"](us_loaders(setup, retain=torch.utils.data.DataLoader(Arrays(*setup.retain), batch_size=256)),
                    ref, torch.nn.CrossEntropyLoss(), us_args(unlearn="fisher", alpha=1e-6))
    # the Fisher itself (their fisher_information_martix sums per-sample squares one by one, ours per chunk)
    from unlearnbench.methods.fisher import diagonal_fisher
    with cuda_noop(), quiet():
        theirs = sys.modules["unlearn.fisher"].fisher_information_martix(
            copy.deepcopy(setup.model), torch.utils.data.DataLoader(Arrays(*setup.retain), batch_size=256), "cpu")
    mine = diagonal_fisher(copy.deepcopy(setup.model), *setup.retain, setup.n_classes, 128)
    rel = max(float(((m - t).abs() / t.abs().clamp_min(1e-30)).max()) for m, t in zip(mine.values(), theirs))
    std_binds = min(float((torch.sqrt(1e-6 / f) >= 1e-3).float().mean()) for f in mine.values())
    return {"reference": f"Unlearn-Sparse unlearn/fisher.py fisher @ {US_COMMIT[:7]}", "knobs": knobs,
            "max_abs_weight_diff": max_weight_diff(ours, ref), "moved": moved(ours, setup.model),
            "fisher_max_rel_diff": rel, "share_of_weights_at_std_clip_min_over_tensors": std_binds}


def cmp_fisher_new(setup, R, S):
    """(a) Fisher diagonal, mean and variance without noise (their hessian + get_mean_var); (b) the whole method
    with noise. α = 1e-6 and also 1e-3 (where the caps do not bind everywhere); (c) their class rule in the
    whole-class case (num_indexes_to_replace 4500 on 'cifar10' forgetting class 0) against class_rule golatkar on
    a request that removes class 0."""
    from unlearnbench.methods import fisher_new as ours_mod

    out = {"reference": f"Unlearn-Sparse unlearn/fisher.py fisher_new, hessian, get_mean_var @ {US_COMMIT[:7]}"}
    for alpha in (1e-6, 1e-3):
        args = us_args(unlearn="fisher_new", alpha=alpha)
        model = copy.deepcopy(setup.model)
        for p in model.parameters():
            p.data0 = p.data.clone()
        with cuda_noop(), quiet():
            R["hessian"](Arrays(*setup.retain), model, torch.nn.CrossEntropyLoss(), args)
        ref_mv = [(p.grad2_acc, *R["get_mean_var"](p, args, False)) for p in model.parameters()]
        mine = copy.deepcopy(setup.model)
        fisher = ours_mod.fisher_diagonal(mine, setup.retain[0], setup.n_classes, 32)
        diffs = {"F": 0.0, "mu": 0.0, "var": 0.0}
        for p, f, (rf, rmu, rvar) in zip(mine.parameters(), fisher, ref_mv):
            mu, var = ours_mod.mean_var(p, f, alpha, setup.n_classes, [])
            diffs["F"] = max(diffs["F"], float((f - rf).abs().max()))
            diffs["mu"] = max(diffs["mu"], float((mu - rmu).abs().max()))
            diffs["var"] = max(diffs["var"], float((var - rvar).abs().max()))
        seed = 17
        ours = setup.ours("fisher_new", {"alpha": alpha}, _global_state_after_loader_seed(seed))
        ref = copy.deepcopy(setup.model)
        torch.manual_seed(seed)
        with cuda_noop(), quiet():
            R["fisher_new"](us_loaders(setup, retain=torch.utils.data.DataLoader(Arrays(*setup.retain), batch_size=256)),
                            ref, torch.nn.CrossEntropyLoss(), args)
        out[f"alpha={alpha:g}"] = {"max_abs_diff_without_noise": diffs, "max_abs_weight_diff": max_weight_diff(ours, ref),
                                   "moved": moved(ours, setup.model)}
    # whole-class forgetting of class 0: their trigger (4500 on cifar10) against our golatkar rule
    keep = setup.retain[1] != 0
    retain0 = (setup.retain[0][keep], setup.retain[1][keep])
    args = us_args(unlearn="fisher_new", alpha=1e-6, num_indexes_to_replace=4500, dataset="cifar10", class_to_replace=0)
    seed = 18
    from unlearnbench.methods import UnlearnContext, UnlearnData, build_method
    m = build_method("fisher_new", {"alpha": 1e-6, "class_rule": "golatkar"})
    ours = copy.deepcopy(setup.model)
    m.unlearn(ours, UnlearnData(declared=m.reads, n_train=setup.n_train, n_classes=setup.n_classes, retain=retain0),
              UnlearnContext(torch.device("cpu"), _global_state_after_loader_seed(seed), log=lambda s: None))
    ref = copy.deepcopy(setup.model)
    torch.manual_seed(seed)
    with cuda_noop(), quiet():
        R["fisher_new"](us_loaders(setup, retain=torch.utils.data.DataLoader(Arrays(*retain0), batch_size=256)), ref,
                        torch.nn.CrossEntropyLoss(), args)
    out["class0_removed"] = {"max_abs_weight_diff": max_weight_diff(ours, ref),
                             "head_row0_zero": bool(torch.all(ours.head.weight[0].abs() < 0.1))}
    return out


def cmp_mia(setup, R, S):
    """metrics.mia_efficacy_svc against their SVC_MIA(...)["confidence"]: shadow members = the same retain subset
    (ours permutes the retain set with the seed and takes min(|retain|, |test|); theirs takes the first |test| in
    dataset order: we give them ours), non-members = the test set, target = the forget set."""
    from unlearnbench.nn import engine
    from unlearnbench.evaluation import metrics

    out = {"reference": f"Unlearn-Sparse evaluation/SVC_MIA.py SVC_MIA ['confidence'] @ {US_COMMIT[:7]}"}
    models = {"original": setup.model,
              "ga": setup.ours("gradient_ascent", {"epochs": 3, "lr": 0.01, "batch_size": 32},
                               torch.Generator().manual_seed(0))}
    for name, model in models.items():
        logits = {k: engine.predict_logits(model, v[0]) for k, v in
                  (("retain", setup.retain), ("test", setup.test), ("forget", setup.forget))}
        seed = 3
        ours = metrics.mia_efficacy_svc(logits["retain"].numpy(), setup.retain[1].numpy(), logits["test"].numpy(),
                                        setup.test[1].numpy(), logits["forget"].numpy(), setup.forget[1].numpy(),
                                        seed=seed)
        n_shadow = min(len(setup.retain[1]), len(setup.test[1]))
        pick = torch.as_tensor(np.random.default_rng(seed).permutation(len(setup.retain[1]))[:n_shadow])
        loader = lambda x, y: torch.utils.data.DataLoader(Arrays(x, y), batch_size=256)  # noqa: E731
        with quiet():
            ref = R["SVC_MIA"](shadow_train=loader(setup.retain[0][pick], setup.retain[1][pick]),
                               shadow_test=loader(*setup.test), target_train=None,
                               target_test=loader(*setup.forget), model=copy.deepcopy(model))["confidence"]
        out[name] = {"ours": ours, "reference": float(ref), "abs_diff": abs(ours - float(ref))}
    return out


COMPARISONS = {"finetune": cmp_finetune, "gradient_ascent": cmp_gradient_ascent, "random_label": cmp_random_label,
               "l1_sparse": cmp_l1_sparse, "scrub": cmp_scrub, "fisher": cmp_fisher, "fisher_new": cmp_fisher_new,
               "mia_efficacy_svc": cmp_mia}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unlearn-sparse", required=True)
    ap.add_argument("--scrub", required=True)
    ap.add_argument("--only", default="", help="comma-separated subset of " + ", ".join(COMPARISONS))
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    R, S = load_unlearn_sparse(a.unlearn_sparse), load_scrub(a.scrub)
    with tempfile.TemporaryDirectory() as tmp:
        setup = Setup(Path(tmp))
        results = {}
        for name, fn in COMPARISONS.items():
            if a.only and name not in a.only.split(","):
                continue
            results[name] = fn(setup, R, S)
            print(name, json.dumps(results[name], indent=1, default=float), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
