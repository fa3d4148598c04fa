"""Xu & Strohmer Figs. 2–4: marginal unlearning trajectories (Fig. 3), output densities under marginal unlearning and
gradient ascent (Fig. 2, our reconstruction), and barycenter images between two feature groups (Fig. 4 analogue).

Fig. 3 follows the authors' Data_Unlearning_MNIST_Plot.py (xushizhou/Machine_Unlearn_via_Info_Reg @ ca32703): an MLP
(input → 128 → 64 → classes, ReLU, logits) trained with Adam (lr 1e-3, batch 64) on the whole training set; the
unlearn set is `unlearn_fraction` (0.75) of the training images of `unlearn_class` (3), drawn once with the data
seed (theirs is unseeded); every trial starts from that one original model and runs methods/marginal_mi.py with
(γ, epochs) from `settings`; trials differ in the data order only. Per epoch: the authors' logged quantities (mean
batch MI and CE over the epoch's steps, accuracy on the full unlearn, remain and test sets), and for the "test"
panel the test accuracy on the unlearned class and on the others, plus the population value of the batch
estimator (the weighted JS divergence at the 64:16 batch ratio, from the groups' mean softmax) on train
(remain vs unlearn) and test (other classes vs the unlearned class).
Fig. 2 and Fig. 4: see `densities` and `barycenter_images`, and docs/methods.md.
"""
from __future__ import annotations

import time

import numpy as np

from ...core.io import read_bundle, write_bundle


# --------------------------------------------------------------------------------------------------- models

def mlp(n_in: int, hidden: list[int], n_out: int, mean: float, std: float, channels: int = 1):
    """The authors' MNISTClassifier shape as a Classifier: uint8 images in, normalised ((x/255 − mean)/std, one
    statistic per channel), flattened, Linear–ReLU blocks, a linear head (logits)."""
    from torch import nn

    from ...nn.models import Classifier, Normalize

    layers, width = [nn.Flatten()], n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return Classifier(Normalize([mean] * channels, [std] * channels), nn.Sequential(*layers), nn.Linear(width, n_out))


def train_classifier(model, x, y, epochs: int, batch_size: int, lr: float, generator) -> None:
    """Adam, cross-entropy, shuffled minibatches (the authors' train_model)."""
    import torch.nn.functional as F

    from ...nn import engine
    from ...nn.optim import Adam

    optimizer = Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in engine.batches(len(x), batch_size, generator, device=x.device):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def _accuracy(model, x, y) -> float:
    from ...nn import engine

    if len(y) == 0:
        return float("nan")
    return float((engine.predict_logits(model, x).argmax(1) == y.cpu()).float().mean())


def population_mi(model, x_remain, x_unlearn, batch_remain: int = 64, batch_unlearn: int = 16) -> float:
    """The batch estimator's population value at the training batch ratio: with q̄_r, q̄_u the mean softmax on the
    full remain / unlearn sets, q̄_0 = (b_r q̄_r + b_u q̄_u)/(b_r + b_u), q̄_1 = q̄_r, P(Z=0) = (b_r + b_u)/(2b_r + b_u):
    I = Σ_z P(z) KL(q̄_z ‖ q̄)."""
    import torch

    from ...nn import engine

    q_r = torch.softmax(engine.predict_logits(model, x_remain).double(), 1).mean(0)
    q_u = torch.softmax(engine.predict_logits(model, x_unlearn).double(), 1).mean(0)
    n0, n1 = batch_remain + batch_unlearn, batch_remain
    q0, q1 = (batch_remain * q_r + batch_unlearn * q_u) / n0, q_r
    p0, p1 = n0 / (n0 + n1), n1 / (n0 + n1)
    q = p0 * q0 + p1 * q1
    kl = lambda a, b: float((a * torch.log(a / b)).sum())  # noqa: E731
    return p0 * kl(q0, q) + p1 * kl(q1, q)


# --------------------------------------------------------------------------------------------------- Fig. 3

def _image_source(source_npz: str, test_fraction: float, seed: int):
    """(x_train, y_train, x_test, y_test) of a prepared source; sources without an official test split (digits) get
    a stratified one drawn with `seed`."""
    from ...datasets import load_prepared
    from ...datasets.experiment import stratified_split

    raw = load_prepared(source_npz)
    x_tr, y_tr = np.asarray(raw["x_train"]), np.asarray(raw["y_train"], dtype=np.int64)
    if len(raw["y_test"]):
        return x_tr, y_tr, np.asarray(raw["x_test"]), np.asarray(raw["y_test"], dtype=np.int64)
    kept, taken = stratified_split(y_tr, test_fraction, np.random.default_rng([seed, 0x7E57]))
    return x_tr[kept], y_tr[kept], x_tr[taken], y_tr[taken]


def trajectories(*, source: str, trajectories_csv: str, references: str, settings: dict, device: str = "cpu",
                 threads: int = 1, log: str | None = None) -> None:
    """Rule xs_trajectories (Fig. 3): per (γ, epochs) setting and trial, the per-epoch log (CSV) and the original
    and retrain references (JSON)."""
    import pandas as pd
    import torch

    from ...nn import engine
    from ...core.io import atomic_path, atomic_write_json
    from ...core.logs import get_logger
    from ...methods import UnlearnContext, UnlearnData, build_method

    info = get_logger(log).info
    engine.configure_threads(threads)
    dev = engine.resolve_device(device)
    s = settings
    x_tr, y_tr, x_te, y_te = _image_source(source, s["test_fraction"], s["seed"])
    rng = np.random.default_rng([s["seed"], 0x0375])
    members = np.flatnonzero(y_tr == s["unlearn_class"])
    if len(members) < 2:
        raise ValueError(f"xs.trajectories.unlearn_class: class {s['unlearn_class']} has {len(members)} training "
                         "images; choose a class of the source")
    unlearn = np.sort(rng.choice(members, int(len(members) * s["unlearn_fraction"]), replace=False))
    remain = np.setdiff1d(np.arange(len(y_tr)), unlearn)
    X = {k: engine.to_device(v, None, dev) for k, v in (("train", x_tr), ("test", x_te))}
    Y = {"train": torch.as_tensor(y_tr, device=dev), "test": torch.as_tensor(y_te, device=dev)}
    x_u, y_u, x_r, y_r = X["train"][unlearn], Y["train"][unlearn], X["train"][remain], Y["train"][remain]
    test_u = np.flatnonzero(y_te == s["unlearn_class"])
    test_o = np.flatnonzero(y_te != s["unlearn_class"])
    n_classes = int(max(y_tr.max(), y_te.max()) + 1)
    pixels = x_tr.astype(np.float64) / 255.0
    mean, std = float(pixels.mean()), float(pixels.std())
    n_in = int(np.prod(x_tr.shape[1:]))
    channels = 1 if x_tr.ndim == 3 else int(x_tr.shape[-1])

    def fresh(seed):
        torch.manual_seed(seed)
        return mlp(n_in, s["hidden"], n_classes, mean, std, channels).to(dev)

    def evaluate(model) -> dict:
        return {"acc_unlearn": _accuracy(model, x_u, y_u), "acc_remain": _accuracy(model, x_r, y_r),
                "acc_test": _accuracy(model, X["test"], Y["test"]),
                "acc_test_class": _accuracy(model, X["test"][test_u], Y["test"][test_u]),
                "acc_test_other": _accuracy(model, X["test"][test_o], Y["test"][test_o]),
                "mi_train_pop": population_mi(model, x_r, x_u), "mi_test_pop":
                    population_mi(model, X["test"][test_o], X["test"][test_u])}

    t0 = time.perf_counter()
    original = fresh(s["seed"])
    train_classifier(original, X["train"], Y["train"], s["train_epochs"], s["batch_size"], s["lr"],
                     torch.Generator().manual_seed(s["seed"]))
    refs = {"original": evaluate(original), "n_unlearn": int(len(unlearn)), "n_remain": int(len(remain)),
            "n_test": int(len(y_te)), "n_test_class": int(len(test_u)), "mean": mean, "std": std}
    info(f"original: {refs['original']} ({time.perf_counter() - t0:.1f} s)")
    if s["retrain"]:
        retrained = fresh(s["seed"] + 1)
        train_classifier(retrained, x_r, y_r, s["train_epochs"], s["batch_size"], s["lr"],
                         torch.Generator().manual_seed(s["seed"] + 1))
        refs["retrain"] = evaluate(retrained)
        info(f"retrain: {refs['retrain']}")
    state = {k: v.clone() for k, v in original.state_dict().items()}
    rows = []
    for setting, (gamma, epochs) in enumerate(s["settings"]):
        for trial in range(s["trials"]):
            model = fresh(0)
            model.load_state_dict(state)
            method = build_method("marginal_mi", {"gamma": float(gamma), "epochs": int(epochs), "lr": s["lr"]},
                                  where="xs.trajectories")
            row0 = {"gamma": gamma, "epochs": epochs, "trial": trial, "epoch": 0, "ce": np.nan, "mi_batch": np.nan,
                    **refs["original"]}
            rows.append(row0)

            def probe(iteration, m, gamma=gamma, epochs=epochs, trial=trial):
                rows.append({"gamma": gamma, "epochs": epochs, "trial": trial, "epoch": iteration, **evaluate(m)})

            # independent data orders per (setting, trial), as the authors' separate runs
            generator = torch.Generator().manual_seed(int(s["seed"] * 100_000 + setting * 1000 + trial))
            ctx = UnlearnContext(dev, generator, log=lambda text: None, on_iteration=probe)
            method.unlearn(model, UnlearnData(forget=(x_u, y_u), retain=(x_r, y_r), declared=method.reads), ctx)
            for record in method.history:  # the authors' per-epoch log: mean batch MI and CE over the epoch
                match = next(r for r in reversed(rows) if r["trial"] == trial and r["epoch"] == record["epoch"]
                             and r["gamma"] == gamma and r["epochs"] == epochs)
                match.update({"ce": record["ce"], "mi_batch": record["mi"]})
        last = [r for r in rows if r["gamma"] == gamma and r["epochs"] == epochs and r["epoch"] == epochs]
        info(f"γ={gamma}, {epochs} epochs: unlearn acc {np.mean([r['acc_unlearn'] for r in last]):.3f} ± "
             f"{np.std([r['acc_unlearn'] for r in last]):.3f}, test {np.mean([r['acc_test'] for r in last]):.3f}")
    with atomic_path(trajectories_csv) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    atomic_write_json(references, {**refs, "seconds": time.perf_counter() - t0, "settings": s})


# --------------------------------------------------------------------------------------------------- Fig. 2

def density_data(s: dict, rng: np.random.Generator):
    """The toy of our Fig. 2 reconstruction. Retain: x ~ U([−1, 1]²), target y = x₁ (so f(X_r) of a good model is
    uniform on [−1, 1]: "the uniform density supported by the retain signal"). Unlearn: a cluster off the retain
    support, x ~ N((0, c), σ²I), whose target carries an extra signal y = x₁ + s. A model that never saw the
    unlearn points extrapolates y ≈ x₁ ≈ 0 there: forgetting the signal concentrates f(X_u) around zero."""
    x_r = rng.uniform(-1, 1, size=(s["n_retain"], 2))
    x_u = np.column_stack([rng.normal(0, s["cluster_sd"], s["n_unlearn"]),
                           rng.normal(s["cluster_offset"], s["cluster_sd"], s["n_unlearn"])])
    return (x_r.astype(np.float32), x_r[:, 0].astype(np.float32),
            x_u.astype(np.float32), (x_u[:, 0] + s["signal"]).astype(np.float32))


def densities(*, densities_npz: str, settings: dict, threads: int = 1, log: str | None = None) -> None:
    """Rule xs_densities (Fig. 2, reconstruction): f(X_r) and f(X_u) at snapshot epochs for three objectives, all
    from one original model trained on D_r ∪ D_u (Adam, MSE):
      marginal   MSE on the retain batch + γ·I(Ŷ; Z), Ŷ the output soft-binned (Gaussian kernel on a fixed grid,
                 mutual_info.soft_histogram), Z the authors' mixture-vs-remain construction;
      ga         gradient ascent on the unlearn MSE (−MSE_u);
      ga_retain  MSE_r − α·MSE_u (gradient ascent with a retain term, "GradDiff").
    Plus the oracle (retrained on D_r alone) as the reference density."""
    import torch
    import torch.nn.functional as F

    from ...nn import engine
    from ...core.logs import get_logger
    from ...evaluation.mutual_info import mixture_groups, mutual_information, soft_histogram
    from ...nn.optim import Adam

    info = get_logger(log).info
    engine.configure_threads(threads)
    s = settings
    rng = np.random.default_rng([s["seed"], 0xF16])
    x_r, y_r, x_u, y_u = (torch.as_tensor(a) for a in density_data(s, rng))
    centres = torch.linspace(-s["bin_range"], s["bin_range"], s["bins"])
    bandwidth = float(centres[1] - centres[0])

    def net(seed):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(2, s["hidden"]), torch.nn.ReLU(), torch.nn.Linear(s["hidden"], s["hidden"]),
                                   torch.nn.ReLU(), torch.nn.Linear(s["hidden"], 1))

    def fit(model, x, y, epochs, seed):
        opt = Adam(model.parameters(), lr=s["lr"])
        g = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in engine.batches(len(x), s["batch_size"], g):
                loss = F.mse_loss(model(x[idx]).squeeze(1), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()

    def outputs(model):
        with torch.no_grad():
            return model(x_r).squeeze(1).numpy(), model(x_u).squeeze(1).numpy()

    t0 = time.perf_counter()
    original = net(s["seed"])
    fit(original, torch.cat([x_r, x_u]), torch.cat([y_r, y_u]), s["train_epochs"], s["seed"])
    oracle = net(s["seed"])
    fit(oracle, x_r, y_r, s["train_epochs"], s["seed"])
    arrays = {"original_r": outputs(original)[0], "original_u": outputs(original)[1],
              "oracle_r": outputs(oracle)[0], "oracle_u": outputs(oracle)[1]}
    snapshots = sorted(set(int(e) for e in s["snapshots"]) | {0, s["epochs"]})
    for objective in ("marginal", "ga", "ga_retain"):
        model = net(0)
        model.load_state_dict(original.state_dict())
        opt = Adam(model.parameters(), lr=s["unlearn_lr"])
        g = torch.Generator().manual_seed(s["seed"] + 1)
        outs_r, outs_u = [], []
        for epoch in range(s["epochs"] + 1):
            if epoch in snapshots:
                r, u = outputs(model)
                outs_r.append(r)
                outs_u.append(u)
            if epoch == s["epochs"]:
                break
            for idx_r, idx_u in zip(engine.batches(len(x_r), s["batch_size"], g),
                                    engine.batches(len(x_u), s["unlearn_batch_size"], g)):
                f_r, f_u = model(x_r[idx_r]).squeeze(1), model(x_u[idx_u]).squeeze(1)
                mse_r, mse_u = F.mse_loss(f_r, y_r[idx_r]), F.mse_loss(f_u, y_u[idx_u])
                if objective == "marginal":
                    h_r, h_u = soft_histogram(f_r, centres, bandwidth), soft_histogram(f_u, centres, bandwidth)
                    mi = mutual_information(None, mixture_groups(len(h_r), len(h_u)), 2,
                                            probs=torch.cat([h_r, h_u, h_r]))
                    loss = mse_r + s["gamma"] * mi
                elif objective == "ga":
                    loss = -mse_u
                else:
                    loss = mse_r - s["alpha"] * mse_u
                opt.zero_grad()
                loss.backward()
                opt.step()
        arrays[f"{objective}_r"] = np.stack(outs_r)
        arrays[f"{objective}_u"] = np.stack(outs_u)
        info(f"{objective}: final mean f(X_u) {outs_u[-1].mean():.3f}, |f(X_r) − y_r| {np.abs(outs_r[-1] - y_r.numpy()).mean():.3f}")
    arrays["snapshots"] = np.array(snapshots)
    arrays["y_r"], arrays["y_u"] = y_r.numpy(), y_u.numpy()
    write_bundle(densities_npz, arrays, {"settings": s, "seconds": time.perf_counter() - t0})


# --------------------------------------------------------------------------------------------------- Fig. 4

def two_colour_digits(x_gray: np.ndarray, colours, mode: str, rng: np.random.Generator):
    """The embedded digits with a constructed binary feature: every image rendered in one of two colours, Z ~
    Bernoulli(½) independent of the digit (as CelebA's smile is of identity)."""
    from ...datasets.colour import render

    z = rng.integers(0, 2, len(x_gray))
    palette = np.asarray(colours, dtype=np.uint8)
    return render(x_gray, z, palette, mode), z


def barycenter_images(*, images_npz: str, settings: dict, source: str | None = None, download_dir: str = "",
                      mirror: str | None = None, threads: int = 1, log: str | None = None) -> None:
    """Rule xs_barycenter (Fig. 4 analogue): the OT map T between the two groups of a binary feature in pixel space
    (feature_unlearning.BarycenterRepair with equal weights: Bary(x) = ½x + ½T(x), McCann at t = ½), for
    `n_show` fixed images of each group: rows X, Bary(X), T(X). Also the share of pairs (x, T(x)) with the same
    digit (does T keep the content?) and a logistic colour probe's accuracy on X and on Bary(X) (is Z gone?)."""
    from threadpoolctl import threadpool_limits

    from ...methods._feature_unlearning import BarycenterRepair
    from ...core.logs import get_logger

    info = get_logger(log).info
    s = settings
    rng = np.random.default_rng([s["seed"], 0xB4])
    t0 = time.perf_counter()
    if s["source"] == "celeba":
        from pathlib import Path

        from ...datasets.tabular import (
            load_celeba_images,
            locate_celeba,
            read_celeba_attributes,
            read_celeba_partition,
        )

        paths = locate_celeba(Path(download_dir), mirror)
        names, attributes, values = read_celeba_attributes(paths["attributes"])
        if s["attribute"] not in attributes:
            raise ValueError(f"xs.barycenter.attribute: {s['attribute']!r} is not a CelebA attribute "
                             f"({', '.join(attributes)})")
        part = read_celeba_partition(paths["partition"])
        col = attributes.index(s["attribute"])
        chosen, z_list = [], []
        for group, value in ((0, -1), (1, 1)):
            pool = [i for i, n in enumerate(names) if values[i, col] == value and part.get(n) == 0]
            take = rng.choice(len(pool), min(s["n_per_group"], len(pool)), replace=False)
            chosen += [names[pool[i]] for i in np.sort(take)]
            z_list += [group] * len(take)
        x = load_celeba_images(paths["images"], chosen, s["image_size"])
        z = np.array(z_list)
        labels = np.zeros(len(z), dtype=np.int64)
    else:
        from ...datasets import load_prepared

        raw = load_prepared(source)
        gray = np.asarray(raw["x_train"])
        x, z = two_colour_digits(gray, s["colours"], s["mode"], rng)
        labels = np.asarray(raw["y_train"], dtype=np.int64)
        keep = np.concatenate([rng.permutation(np.flatnonzero(z == g))[:s["n_per_group"]] for g in (0, 1)])
        x, z, labels = x[keep], z[keep], labels[keep]
    flat = x.reshape(len(x), -1).astype(np.float64) / 255.0
    with threadpool_limits(limits=max(1, threads)):
        repair = BarycenterRepair(s["map"], "equal", s["sinkhorn_reg"], s["emd_max_n"], seed=s["seed"]).fit(flat, z)
        bary = repair.barycenter_image(flat, z)
        transported = 2 * bary - flat  # Bary = ½x + ½T(x) with equal weights
        probe = _colour_probe(flat, bary, z, s["seed"])
    show = {g: rng.permutation(np.flatnonzero(z == g))[:s["n_show"]] for g in (0, 1)}
    pairs = _pair_labels(repair, flat, z, labels) if s["source"] != "celeba" else float("nan")
    arrays = {}
    for g in (0, 1):
        arrays[f"x_{g}"] = x[show[g]]
        arrays[f"bary_{g}"] = _to_image(bary[show[g]], x.shape[1:])
        arrays[f"t_{g}"] = _to_image(transported[show[g]], x.shape[1:])
    meta = {"settings": s, "n": {str(g): int((z == g).sum()) for g in (0, 1)}, "solver": repair.solver,
            "same_label_share": pairs, **probe, "seconds": time.perf_counter() - t0}
    info(f"barycenter images: {meta}")
    write_bundle(images_npz, arrays, meta)


def _to_image(flat: np.ndarray, shape) -> np.ndarray:
    return np.clip(np.rint(flat * 255.0), 0, 255).astype(np.uint8).reshape((len(flat),) + tuple(shape))


def _colour_probe(flat, bary, z, seed) -> dict:
    """Cross-validated accuracy of a logistic regression predicting Z from the pixels, before and after."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    out = {}
    for name, data in (("probe_acc_x", flat), ("probe_acc_bary", bary)):
        out[name] = float(cross_val_score(LogisticRegression(max_iter=500), data, z, cv=3).mean())
    return out


def _pair_labels(repair, flat, z, labels) -> float:
    """Share of group-0 images whose OT partner (the group-1 image carrying most of its mass) has the same label."""
    if repair.solver == "quantile":
        return float("nan")
    idx0, idx1 = np.flatnonzero(z == 0), np.flatnonzero(z == 1)
    plan = repair.plan  # fitted on every image of both groups, in this order
    return float(np.mean(labels[idx1[plan.argmax(1)]] == labels[idx0]))


def load_bundle(path: str):
    return read_bundle(path)
