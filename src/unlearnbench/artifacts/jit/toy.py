"""JiT Fig. 2: how a 2-D classifier's decision boundary moves when one training point is forgotten.

A small MLP (2 → 32 → 32 → 2, tanh; a `models.Classifier` with the identity as its normalisation, so JiT's
perturbations are in input space) is trained full-batch on two overlapping Gaussian classes until it fits every
training point. Two forget points are chosen by the original model's input-gradient norm ‖∇_x (f_1 − f_0)(x)‖ at the
training points: the lowest ("low-gradient": deep inside its class) and the highest ("high-gradient": a point the
model had to bend its boundary around). For each, four models:

  original   the trained model;
  retrain    trained again from the same initialisation without the point (the gold standard);
  JiT        the registered `jit` method (methods/jit.py, through its public interface: build_method + unlearn on
             the forget point alone), with the knobs TOY_KNOBS; several noise draws (TOY_DRAWS generator seeds),
             because on a memorised point JiT's outcome is bimodal over draws: the panel overlays every
             draw's boundary and states how many flip the point's prediction;
  mislabel   the original trained on the forget point alone with the other label (plain SGD, JiT's learning rate
             and number of steps): "naively training to mislabel".

Everything is seeded: the figure is the same on every run (CPU). It takes seconds (a few thousand tiny full-batch
steps); `toy_experiment` returns the numbers the figure shows.
"""
from __future__ import annotations

import copy

import numpy as np

from ...core.io import atomic_path

N_PER_CLASS = 40
CENTRES = ((-1.0, 0.0), (1.0, 0.0))
SPREAD = 0.6
HIDDEN = 32
TRAIN_STEPS = 600
TRAIN_LR = 0.02
# JiT on one 2-D point: σ comparable to the classes' spread, a large step and many passes (one point, one step per
# pass); the paper's image-scale values (η 3e-4, one pass) would not move a 2-D model. The paper's Eq. 1 reading
# (mean, gradient through both passes, eval mode, no clamp) where the method offers it as `form`: the reference
# code's clamp to the batch's [min, max] would confine a single 2-D point's perturbations to a box.
TOY_KNOBS = {"lr": 0.1, "sigma": 0.3, "n_perturbations": 25, "batch_size": 1, "epochs": 100}
TOY_FORM = {"form": "equation"}
TOY_DRAWS = (0, 1, 2, 3, 4)
GRID = 120


def _torch():
    import torch

    return torch


def toy_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(c, SPREAD, (N_PER_CLASS, 2)) for c in CENTRES]).astype(np.float32)
    y = np.repeat(np.arange(len(CENTRES)), N_PER_CLASS)
    return x, y


def toy_model(seed: int = 1):
    """The MLP as a models.Classifier (normalize = identity), so the registered methods run on it unchanged."""
    torch = _torch()
    from torch import nn

    from ...nn.models import Classifier

    torch.manual_seed(seed)
    features = nn.Sequential(nn.Linear(2, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh())
    return Classifier(nn.Identity(), features, nn.Linear(HIDDEN, 2))


def _fit(model, x, y):
    torch = _torch()
    opt = torch.optim.Adam(model.parameters(), lr=TRAIN_LR)
    for _ in range(TRAIN_STEPS):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def jit_knobs() -> dict:
    """TOY_KNOBS, plus the Eq. 1 form where the registered jit method has a `form` knob."""
    from ...core.knobs import knob_fields
    from ...methods import REGISTRY

    fields = knob_fields(REGISTRY["jit"].Knobs)
    return {**{k: v for k, v in TOY_KNOBS.items() if k in fields}, **{k: v for k, v in TOY_FORM.items() if k in fields}}


def run_jit(model, x_point, y_point, draw: int):
    """The registered `jit` method on one forget point (a copy of `model`), noise from generator seed `draw`."""
    torch = _torch()
    from ...methods import UnlearnContext, UnlearnData, build_method

    method = build_method("jit", jit_knobs(), where="jit_toy")
    out = copy.deepcopy(model)
    data = UnlearnData(declared=method.reads, forget=(x_point, y_point), n_train=1, n_classes=2, owner="jit_toy")
    method.unlearn(out, data, UnlearnContext(torch.device("cpu"), torch.Generator().manual_seed(draw),
                                             log=lambda _: None))
    return out.eval()


def mislabel(model, x_point, y_point):
    """Plain SGD on the forget point alone with the other label, JiT's learning rate and number of steps."""
    torch = _torch()
    out = copy.deepcopy(model).train()
    opt = torch.optim.SGD(out.parameters(), lr=TOY_KNOBS["lr"])
    for _ in range(TOY_KNOBS["epochs"]):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(out(x_point), 1 - y_point).backward()
        opt.step()
    return out.eval()


def toy_experiment() -> dict:
    """Train, pick the two forget points, unlearn; returns the models' probabilities of class 1 on a grid, the
    points, and per (point, model) the forget point's probability of its label and the share of the grid where the
    model's decision agrees with retrain's."""
    torch = _torch()
    x_np, y_np = toy_data()
    x, y = torch.tensor(x_np), torch.tensor(y_np)
    init = toy_model().state_dict()

    def trained(mask):
        model = toy_model()
        model.load_state_dict(init)
        return _fit(model, x[mask], y[mask])

    original = trained(torch.ones(len(x), dtype=torch.bool))
    xg = x.clone().requires_grad_(True)
    logits = original(xg)
    (grad,) = torch.autograd.grad((logits[:, 1] - logits[:, 0]).sum(), xg)
    gradient_norm = grad.norm(dim=1).detach().numpy()
    picks = {"low": int(np.argmin(gradient_norm)), "high": int(np.argmax(gradient_norm))}
    lo, hi = x_np.min(0) - 0.8, x_np.max(0) + 0.8
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID))
    grid = torch.tensor(np.stack([g1.ravel(), g2.ravel()], 1).astype(np.float32))

    @torch.no_grad()
    def prob1(model, points):
        return torch.softmax(model(points), 1)[:, 1].numpy()

    result = {"x": x_np, "y": y_np, "gradient_norm": gradient_norm, "grid": (g1, g2), "points": {},
              "train_accuracy": float((original(x).argmax(1) == y).float().mean()), "knobs": jit_knobs()}
    for kind, idx in picks.items():
        xp, yp = x[idx:idx + 1], y[idx:idx + 1]
        mask = torch.ones(len(x), dtype=torch.bool)
        mask[idx] = False
        models = {"original": [original], "retrain": [trained(mask)],
                  "jit": [run_jit(original, xp, yp, d) for d in TOY_DRAWS], "mislabel": [mislabel(original, xp, yp)]}
        surfaces = {name: [prob1(m, grid).reshape(g1.shape) for m in ms] for name, ms in models.items()}
        retrain_side = surfaces["retrain"][0] > 0.5
        label = int(y_np[idx])
        result["points"][kind] = {
            "index": idx, "xy": x_np[idx], "label": label, "gradient_norm": float(gradient_norm[idx]),
            "surfaces": surfaces,
            "p_label": {name: [float(p if label == 1 else 1 - p) for p in (prob1(m, xp)[0] for m in ms)]
                        for name, ms in models.items()},
            "agreement_with_retrain": {name: [float(((s > 0.5) == retrain_side).mean()) for s in ss]
                                       for name, ss in surfaces.items()},
        }
    return result


def toy_figure(*, pdf: str, png: str, threads: int = 1, log: str | None = None) -> dict:
    """Rule jit_toy_figure: JiT Fig. 2 from toy_experiment (rows: low- / high-gradient forget point; columns:
    original, retrain, JiT (every noise draw), mislabel); the numbers it shows go to the log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...nn import engine
    from ...core.logs import get_logger

    engine.configure_threads(threads)
    res = toy_experiment()
    logger = get_logger(log)
    logger.info(f"toy: training accuracy {res['train_accuracy']:.3f}; jit knobs {res['knobs']}")
    for kind, point in res["points"].items():
        logger.info(f"{kind}-gradient point #{point['index']} at {point['xy'].tolist()} (label {point['label']}, "
                    f"gradient norm {point['gradient_norm']:.4g}): p(label) {point['p_label']}; agreement with "
                    f"retrain {point['agreement_with_retrain']}")
    g1, g2 = res["grid"]
    titles = {"original": "Original", "retrain": "Retrain (gold standard)", "jit": "JiT", "mislabel": "Mislabel"}
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.4), sharex=True, sharey=True)
    for r, kind in enumerate(("low", "high")):
        point = res["points"][kind]
        for c, name in enumerate(titles):
            ax = axes[r, c]
            surfaces = point["surfaces"][name]
            ax.contourf(g1, g2, surfaces[0], levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.35)
            for s in surfaces:
                ax.contour(g1, g2, s, levels=[0.5], colors="k", linewidths=1.0 if len(surfaces) == 1 else 0.8)
            if name != "original":
                ax.contour(g1, g2, point["surfaces"]["original"][0], levels=[0.5], colors="0.45",
                           linewidths=0.8, linestyles="--")
            ax.scatter(res["x"][:, 0], res["x"][:, 1], c=res["y"], cmap="RdBu_r", vmin=0, vmax=1, s=9,
                       edgecolors="k", linewidths=0.3)
            ax.scatter(*point["xy"], marker="*", s=220, c="gold", edgecolors="k", linewidths=0.8, zorder=5)
            p = point["p_label"][name]
            agree = point["agreement_with_retrain"][name]
            if name == "jit":
                flipped = sum(v < 0.5 for v in p)
                text = (f"{len(p)} noise draws: point forgotten in {flipped}/{len(p)}\n"
                        f"p(label) {min(p):.2f}–{max(p):.2f}; agrees w/ retrain {min(agree):.0%}–{max(agree):.0%}")
            else:
                text = f"p(label) = {p[0]:.2f}; agrees w/ retrain {agree[0]:.0%}"
            ax.set_title(f"{titles[name]}\n{text}", fontsize=8)
            ax.tick_params(labelsize=6)
        axes[r, 0].set_ylabel(f"{kind}-gradient point\n‖∇f‖ = {point['gradient_norm']:.3g}", fontsize=9)
    knobs = ", ".join(f"{k}={v}" for k, v in res["knobs"].items())
    fig.suptitle("Forgetting one point of a 2-D classifier (JiT Fig. 2): solid = decision boundary (JiT: one per noise "
                 "draw; shading: draw 0), dashed = original's; star = forget point.\n"
                 f"JiT = the registered jit method ({knobs}); mislabel = SGD on the point with the other label "
                 f"(lr {TOY_KNOBS['lr']}, {TOY_KNOBS['epochs']} steps)", fontsize=8)
    fig.tight_layout()
    for path, kwargs in ((pdf, {}), (png, {"dpi": 150})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.rsplit(".", 1)[1], bbox_inches="tight", **kwargs)
    plt.close(fig)
    return res
