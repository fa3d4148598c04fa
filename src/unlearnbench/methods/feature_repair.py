"""Feature unlearning of a systematic pattern (the colour of UIB's bias scenario) by Xu & Strohmer's two methods,
beyond their paper: run on the retain data with the protected feature Z = each retain image's colour
(`retain_attribute`).

ot_repair   W2-barycenter repair of the retain images (feature_unlearning.BarycenterRepair over the colour groups,
            in pixel space; default: per-pixel-channel 1-D quantile barycenters, exact for every marginal), partial
            repair x_λ = (1 − λ)x + λ·B(x), then fine-tuning on the repaired images (FT's recipe). The model learns
            from data in which no pixel's distribution depends on the colour.
mi_feature  fine-tuning on the retain data with CE + γ·I(Ŷ; Z) per batch (the authors' soft-prediction estimator,
            unlearnbench.evaluation.mutual_info, Z = colour); `given_label`: Σ_y P(y)·I(Ŷ; Z | Y = y) instead, which penalises
            only what the colour tells about the prediction beyond the label (an equalised-odds form; ours).
Both fine-tune with FT's optimiser and batching (engine.train / engine.make_optimizer), constant learning rate (docs/methods.md, "Xu & Strohmer").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.lazy import lazy_import
from ..evaluation.mutual_info import mutual_information
from .base import SGDKnobs, UnlearningMethod, engine, knob, register, torch

F = lazy_import("torch.nn.functional")


def _attribute(data, name: str):
    z = data.retain_attribute
    if z is None:
        raise ValueError(f"{name} needs the retain images' protected feature (colour scenarios only: the bias "
                         "scenario on a coloured dataset)")
    return z


@register
class OTRepair(UnlearningMethod):
    name = "ot_repair"
    reads = frozenset({"retain", "retain_attribute"})
    scenarios = frozenset({"bias"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): repair λ over [0, 1]; FT's lr and epochs
    search_space = {"lam": {"low": 0.0, "high": 1.0}, "lr": {"low": 1.0e-5, "high": 0.1, "log": True}, "epochs": {"low": 1, "high": 10}}

    @dataclass
    class Knobs(SGDKnobs):
        lam: float = knob(1.0, low=0.0, high=1.0, help="partial repair λ (1: the barycenter)")
        map: str = knob("quantile", choices=("quantile", "emd", "sinkhorn", "auto"),
                        help="quantile: per pixel-channel 1-D barycenters; emd / sinkhorn: multivariate OT")
        weights: str = knob("shares", choices=("shares", "equal"))
        sinkhorn_reg: float = knob(0.01, low=0.0, low_open=True)
        emd_max_n: int = knob(3000, low=2)
        given_label: bool = knob(False, help="repair within each class (X ⊥ Z | Y; ours): the colour groups of one "
                                             "class are mapped to that class's barycenter")

    def unlearn(self, model, data, ctx):
        from ._feature_unlearning import BarycenterRepair

        k = self.knobs
        x, y = data.retain
        z = _attribute(data, self.name).cpu().numpy()
        flat = x.reshape(len(x), -1).cpu().numpy().astype(np.float64) / 255.0
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=ctx.generator))
        rng = np.random.default_rng(seed)
        labels = y.cpu().numpy()
        parts = [np.flatnonzero(labels == c) for c in np.unique(labels)] if k.given_label else [np.arange(len(z))]
        repaired = flat.copy()
        solvers = set()
        for rows in parts:
            if len(np.unique(z[rows])) < 2:
                continue  # a single colour: nothing to repair in this part
            repair = BarycenterRepair(k.map, k.weights, k.sinkhorn_reg, k.emd_max_n, seed=seed).fit(flat[rows], z[rows])
            repaired[rows] = repair.transform(flat[rows], z[rows], k.lam, rng)
            solvers.add(repair.solver)
        x_rep = torch.as_tensor(np.clip(np.rint(repaired * 255.0), 0, 255).astype(np.uint8)).reshape(x.shape)
        x_rep = x_rep.to(x.device)
        ctx.log(f"repaired {len(x)} retain images over {len(np.unique(z))} colour groups ({', '.join(sorted(solvers))}"
                f", λ={k.lam}, {'within each class' if k.given_label else 'all classes'}); mean |Δpixel| "
                f"{np.abs(repaired - flat).mean() * 255:.2f}")
        engine.train(model, x_rep, y, k.train_config(), generator=ctx.generator, log=ctx.log,
                     on_epoch_end=lambda epoch, m: ctx.iteration(m))


def conditional_mi(logits, z, y, n_groups: int, n_classes: int):
    """Σ_y P(y)·I(Ŷ; Z | Y = y) over a batch (classes with a single Z value contribute 0)."""
    total = logits.new_zeros(())
    for c in range(n_classes):
        rows = y == c
        if int(rows.sum()) > 1:
            total = total + rows.float().mean() * mutual_information(logits[rows], z[rows], n_groups)
    return total


@register
class MIFeature(UnlearningMethod):
    name = "mi_feature"
    reads = frozenset({"retain", "retain_attribute"})
    scenarios = frozenset({"bias"})

    # equal-budget tuning (`tuning: equal_budget`, docs/tuning.md): γ log around the default 10; FT's lr and epochs
    search_space = {"gamma": {"low": 0.1, "high": 100.0, "log": True}, "lr": {"low": 1.0e-5, "high": 0.1, "log": True}, "epochs": {"low": 1, "high": 10}}

    @dataclass
    class Knobs(SGDKnobs):
        gamma: float = knob(10.0, low=0.0, help="γ: weight of I(Ŷ; Z), Z = the colour")
        given_label: bool = knob(False, help="penalise I(Ŷ; Z | Y) instead of I(Ŷ; Z)")
        debias: bool = knob(False, help="subtract the estimator on a within-batch permutation of Z (ours)")

    def unlearn(self, model, data, ctx):
        k = self.knobs
        x, y = data.retain
        z = _attribute(data, self.name)
        n_groups = int(z.max()) + 1
        n_classes = int(y.max()) + 1
        # FT's optimiser and batching (engine.train): at γ = 0 this is FT step for step
        cfg = k.train_config()
        optimizer = engine.make_optimizer(model, cfg)
        for epoch in range(k.epochs):
            model.train()
            ce_sum = mi_sum = 0.0
            steps = 0
            for idx in engine.batches(len(x), cfg.batch_size, ctx.generator,
                                      drop_last=cfg.drop_last and len(x) > cfg.batch_size, device=x.device):
                logits = model(x[idx])
                ce = F.cross_entropy(logits, y[idx])
                mi = self._penalty(logits, z[idx], y[idx], n_groups, n_classes)
                if k.debias:  # the plug-in's finite-sample bias: its value when Z is independent of everything
                    perm = torch.randperm(len(idx), generator=ctx.generator).to(x.device)
                    mi = mi - self._penalty(logits, z[idx][perm], y[idx], n_groups, n_classes)
                loss = ce + k.gamma * mi
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                ce_sum, mi_sum, steps = ce_sum + float(ce.detach()), mi_sum + float(mi.detach()), steps + 1
            ctx.log(f"epoch {epoch + 1}/{k.epochs}: CE {ce_sum / steps:.4f}, MI {mi_sum / steps:.5f} nats")
            ctx.iteration(model)

    def _penalty(self, logits, z, y, n_groups, n_classes):
        if self.knobs.given_label:
            return conditional_mi(logits, z, y, n_groups, n_classes)
        return mutual_information(logits, z, n_groups)
