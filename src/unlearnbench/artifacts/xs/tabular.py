"""Xu & Strohmer Fig. 1: feature-unlearning frontiers on tabular data (utility vs demographic-parity gap).

Per outer fold (StratifiedKFold on (y, z), seeded; 5 folds), the training part is split once more into a fitting part
and a validation part (`val_fraction`, stratified on (y, z)): every model is fitted on the fitting part, and both
validation and test metrics are recorded, so that a point of the frontier can be *selected* on validation data
(table_xs_frontier) while the figure shows the test metrics of every trade-off value.

Methods, each with its trade-off parameter (`param` in the output):
  unconstrained    logistic regression (scikit-learn defaults, C = 1), on every feature but Z; one point.
  repair_<map>     λ: W2-barycenter repair of the features (feature_unlearning.BarycenterRepair, fitted on the fitting
                   part, applied to each part with its own Z), x_λ = (1−λ)x + λ·B(x), then the same logistic regression.
  mi               γ: logistic regression trained on CE + ‖w‖²/(2Cn) + γ·I(Ŷ; Z), I the authors' soft-prediction
                   estimator (unlearnbench.evaluation.mutual_info) on the whole fitting part, Z the protected attribute; L-BFGS,
                   warm-started along increasing γ (γ = 0 is the unconstrained model).
  fairlearn_eg     ε: fairlearn's ExponentiatedGradient(LogisticRegression, DemographicParity(difference_bound=ε));
                   hard predictions are its randomised classifier's (seeded), scores its `_pmf_predict`.
Metrics (test and validation): accuracy (↑), AUROC (↑) of the model's scores, DP gap (↓) of hard predictions.
Threads: BLAS pools are limited to the job's threads (threadpoolctl): oversubscribed BLAS made one logistic
regression 25× slower on a loaded 2-core machine.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ...methods._feature_unlearning import BarycenterRepair, dp_gap


def _metrics(y, score, pred, z) -> dict:
    from sklearn.metrics import roc_auc_score

    return {"accuracy": float(np.mean(pred == y)), "auroc": float(roc_auc_score(y, score)),
            "dp_gap": dp_gap(pred, z)}


def _design(frame: pd.DataFrame, categorical: list[str], numeric: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer([("num", StandardScaler(), numeric),
                              ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)])


def _logistic(C: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=2000)


def fit_mi_logistic(X, y, z, gamma: float, C: float = 1.0, init: np.ndarray | None = None,
                    max_iter: int = 500) -> np.ndarray:
    """Parameters (w, b) minimising mean CE + ‖w‖²/(2Cn) + γ·I(Ŷ; Z) (soft predictions [1−σ, σ]); scipy L-BFGS
    with torch gradients in float64. At γ = 0 the objective is scikit-learn's LogisticRegression(C)'s divided by n."""
    import torch
    from scipy.optimize import minimize

    from ...evaluation.mutual_info import mutual_information

    Xt = torch.as_tensor(np.asarray(X, dtype=np.float64))
    yt = torch.as_tensor(np.asarray(y, dtype=np.float64))
    zt = torch.as_tensor(np.asarray(z, dtype=np.int64))
    n, d = Xt.shape
    n_groups = int(zt.max()) + 1

    def objective(theta):
        t = torch.as_tensor(theta, dtype=torch.float64).requires_grad_(True)
        logit = Xt @ t[:d] + t[d]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, yt) + (t[:d] ** 2).sum() / (2 * C * n)
        if gamma:
            p = torch.sigmoid(logit)
            loss = loss + gamma * mutual_information(None, zt, n_groups, probs=torch.stack([1 - p, p], 1))
        loss.backward()
        return float(loss.detach()), t.grad.numpy().copy()

    theta0 = np.zeros(d + 1) if init is None else np.asarray(init, dtype=np.float64)
    result = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter, "gtol": 1e-8})
    return result.x


def _score_linear(theta, X):
    logit = np.asarray(X) @ theta[:-1] + theta[-1]
    return 1.0 / (1.0 + np.exp(-logit))


def _split_fit_val(y, z, val_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    return train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=2 * y + z)


def frontier(table: pd.DataFrame, z: np.ndarray, categorical: list[str], numeric: list[str], settings: dict,
             log=print, only_folds: list[int] | None = None) -> pd.DataFrame:
    """Every method's metrics per (fold, parameter, split); see the module docstring. `settings`: folds, seed,
    val_fraction, C, lambdas, repair_maps, weights, sinkhorn_reg, emd_max_n, ot_max_fit, gammas, eg_bounds.
    only_folds: compute these outer folds only (the workflow runs one job per fold)."""
    from sklearn.model_selection import StratifiedKFold

    y = table["y"].to_numpy().astype(np.int64)
    z = np.asarray(z).astype(np.int64)
    s = settings
    folds = StratifiedKFold(n_splits=s["folds"], shuffle=True, random_state=s["seed"])
    rows = []
    for fold, (train, test) in enumerate(folds.split(np.zeros(len(y)), 2 * y + z)):
        if only_folds is not None and fold not in only_folds:
            continue
        t_fold = time.perf_counter()
        fit_rel, val_rel = _split_fit_val(y[train], z[train], s["val_fraction"], s["seed"] + fold)
        parts = {"fit": train[fit_rel], "val": train[val_rel], "test": test}
        design = _design(table, categorical, numeric).fit(table.iloc[parts["fit"]])
        X = {k: design.transform(table.iloc[v]) for k, v in parts.items()}
        Y = {k: y[v] for k, v in parts.items()}
        Z = {k: z[v] for k, v in parts.items()}

        def record(method, param, score, pred, seconds):
            for split in ("val", "test"):
                rows.append({"fold": fold, "method": method, "param": float(param), "split": split,
                             **_metrics(Y[split], score[split], pred[split], Z[split]), "seconds": seconds})

        # unconstrained
        t0 = time.perf_counter()
        model = _logistic(s["C"]).fit(X["fit"], Y["fit"])
        record("unconstrained", 0.0, {k: model.predict_proba(X[k])[:, 1] for k in ("val", "test")},
               {k: model.predict(X[k]) for k in ("val", "test")}, time.perf_counter() - t0)
        # barycenter repair, one map per configured solver, λ on its grid
        for map_name in s["repair_maps"]:
            t0 = time.perf_counter()
            rng = np.random.default_rng([s["seed"], fold, 0xBA])
            fit_rows = np.arange(len(Y["fit"]))
            if map_name != "quantile" and len(fit_rows) > s["ot_max_fit"]:
                fit_rows = np.sort(rng.choice(fit_rows, s["ot_max_fit"], replace=False))
            repair = BarycenterRepair(map_name, s["weights"], s["sinkhorn_reg"], s["emd_max_n"],
                                      seed=s["seed"] + fold).fit(X["fit"][fit_rows], Z["fit"][fit_rows])
            images = {k: repair.barycenter_image(X[k], Z[k], rng) for k in parts}
            t_map = time.perf_counter() - t0
            for lam in s["lambdas"]:
                t0 = time.perf_counter()
                Xl = {k: (1 - lam) * X[k] + lam * images[k] for k in parts}
                model = _logistic(s["C"]).fit(Xl["fit"], Y["fit"])
                record(f"repair_{map_name}", lam, {k: model.predict_proba(Xl[k])[:, 1] for k in ("val", "test")},
                       {k: model.predict(Xl[k]) for k in ("val", "test")},
                       time.perf_counter() - t0 + t_map / len(s["lambdas"]))
        # MI-regularised training
        theta = None
        for gamma in sorted(s["gammas"]):
            t0 = time.perf_counter()
            theta = fit_mi_logistic(X["fit"], Y["fit"], Z["fit"], gamma, s["C"], init=theta)
            score = {k: _score_linear(theta, X[k]) for k in ("val", "test")}
            record("mi", gamma, score, {k: (v >= 0.5).astype(np.int64) for k, v in score.items()},
                   time.perf_counter() - t0)
        # fairlearn's reductions approach
        if s["eg_bounds"]:
            from fairlearn.reductions import DemographicParity, ExponentiatedGradient

            for bound in s["eg_bounds"]:
                t0 = time.perf_counter()
                eg = ExponentiatedGradient(_logistic(s["C"]), DemographicParity(difference_bound=bound))
                eg.fit(X["fit"], Y["fit"], sensitive_features=Z["fit"])
                record("fairlearn_eg", bound, {k: eg._pmf_predict(X[k])[:, 1] for k in ("val", "test")},
                       {k: eg.predict(X[k], random_state=s["seed"] + fold) for k in ("val", "test")},
                       time.perf_counter() - t0)
        log(f"fold {fold + 1}/{s['folds']}: {time.perf_counter() - t_fold:.2f} s")
    return pd.DataFrame(rows)


def run_tabular(*, table: str, frontier_csv: str, dataset: str, source: str, fold: int, settings: dict,
                threads: int = 1, log: str | None = None) -> None:
    """Rule xs_tabular: one outer fold of the frontier of configured tabular dataset `dataset` (its `source` table
    and `settings`: xs.tabular with the dataset's own `protected`); CSV: one row per method, parameter, split."""
    from threadpoolctl import threadpool_limits

    from ...datasets.tabular import feature_columns, protected_attribute
    from ...core.io import atomic_path
    from ...core.logs import get_logger

    info = get_logger(log).info
    frame = pd.read_csv(table, dtype={"job": str})
    if not 0 <= fold < settings["folds"]:
        raise ValueError(f"xs.tabular: fold {fold} outside 0..{settings['folds'] - 1}")
    z = protected_attribute(source, frame, settings["protected"])
    categorical, numeric = feature_columns(source, settings["protected"])
    with threadpool_limits(limits=max(1, threads)):
        import torch

        torch.set_num_threads(max(1, threads))
        t0 = time.perf_counter()
        out = frontier(frame, z, categorical, numeric, settings, log=info, only_folds=[fold])
        info(f"{dataset} fold {fold}: {len(out)} rows in {time.perf_counter() - t0:.2f} s")
    out.insert(0, "dataset", dataset)
    with atomic_path(frontier_csv) as tmp:
        out.to_csv(tmp, index=False)
