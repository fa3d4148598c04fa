"""How far IF's LiSSA step is from the exact damped Newton step (docs/methods.md, IF).

On the embedded default's digits model (random scenario, 10% forget request, data_seed 0, baseline seed 0, small CNN
with ~24k parameters): H = the Hessian of the mean retain cross-entropy in eval mode (what IF's LiSSA samples with
retain mini-batches), v = IF's vector (1/n)·[−Σ_{ΔD} ∇ℓ]. Exact solves x(λ) = (H + λI)⁻¹v with MINRES on exact
Hessian-vector products over the whole retain set (H is indefinite: MINRES, not CG); H's extreme eigenvalues by
Lanczos (scipy eigsh). For each LiSSA setting (damping d, scale s, depth, mini-batch) the estimate is compared with
x(d·s) (the damped step it targets) and with x(λ_ref), λ_ref = 2|λ_min| (a lightly damped, well-posed Newton step):
cosine and norm ratio. Each step is applied (θ ← θ − step) and the forget/test accuracy reported,
next to the original and the retrain oracle.

  PYTHONPATH=src python benchmarks/lissa_newton.py [--seed 0] [--json out.json]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_equality import Setup  # noqa: E402  (the embedded digits setup)

from unlearnbench.methods.influence import hessian_vector_product, lissa_inverse_hvp, summed_gradient  # noqa: E402


def flat(ts):
    return torch.cat([t.reshape(-1) for t in ts]).double()


def unflat(vec, like):
    out, i = [], 0
    for p in like:
        out.append(vec[i:i + p.numel()].view_as(p).to(p.dtype))
        i += p.numel()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--eigenvalues", default=None, help="'max,min' of H from an earlier run (skips the Lanczos runs)")
    ap.add_argument("--maxiter", type=int, default=2000, help="MINRES iterations at most")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    from scipy.sparse.linalg import LinearOperator, eigsh, minres

    with tempfile.TemporaryDirectory() as tmp:
        setup = Setup(Path(tmp))
        oracle_path = Path(tmp) / "oracle.pt"
        from unlearnbench.steps import training
        training.train_oracle(experiment=str(Path(tmp) / "exp.npz"), request=str(Path(tmp) / "req.npz"),
                              model=str(oracle_path), run=str(Path(tmp) / "o.json"), outputs=str(Path(tmp) / "o.npz"),
                              training=setup.training, identity={"dataset": "digits", "scenario": "random", "seed": 0},
                              seed=0, device="cpu", threads=1, log=str(Path(tmp) / "log"))
        oracle, _ = training.load_model(str(oracle_path), setup.data, torch.device("cpu"))
    model = setup.model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    x_r, y_r = setup.retain
    x_f, y_f = setup.forget

    def accs(m):
        m.eval()
        with torch.no_grad():
            return {"forget_acc": float((m(x_f).argmax(1) == y_f).float().mean()),
                    "test_acc": float((m(setup.test[0]).argmax(1) == setup.test[1]).float().mean()),
                    "forget_loss": float(F.cross_entropy(m(x_f), y_f))}

    v = [-g / setup.n_train for g in summed_gradient(model, x_f, y_f, params, 256)]
    v_flat = flat(v).numpy()
    n_hvp = [0]

    def hvp(vec):
        n_hvp[0] += 1
        pieces = unflat(torch.from_numpy(np.asarray(vec).reshape(-1)), params)
        loss = F.cross_entropy(model(x_r), y_r)  # full retain set, mean: the H LiSSA samples
        return flat(hessian_vector_product(loss, params, pieces)).numpy()

    op = LinearOperator((n_params, n_params), matvec=hvp, dtype=np.float64)
    t0 = time.perf_counter()
    if a.eigenvalues:
        lam_max, lam_min = map(float, a.eigenvalues.split(","))
    else:
        lam_max = float(eigsh(op, k=1, which="LA", tol=1e-4, return_eigenvectors=False)[0])
        lam_min = float(eigsh(op, k=1, which="SA", tol=1e-4, return_eigenvectors=False)[0])
    print(f"{n_params} parameters; H eigenvalues: max {lam_max:.4g}, min {lam_min:.4g} ({n_hvp[0]} HVPs, "
          f"{time.perf_counter() - t0:.0f}s)", flush=True)

    exact = {}

    def solve(lam):
        if lam not in exact:
            shifted = LinearOperator((n_params, n_params), matvec=lambda z: hvp(z) + lam * np.asarray(z).reshape(-1),
                                     dtype=np.float64)
            x, info = minres(shifted, v_flat, rtol=1e-8, maxiter=a.maxiter)
            resid = np.linalg.norm(shifted.matvec(x) - v_flat) / np.linalg.norm(v_flat)
            exact[lam] = (x, resid, info)
        return exact[lam]

    def apply(step_flat):
        m = copy.deepcopy(model)
        with torch.no_grad():
            for p, s in zip([q for q in m.parameters() if q.requires_grad], unflat(torch.as_tensor(step_flat), params)):
                p.sub_(s)
        return accs(m)

    lam_ref = round(2 * abs(min(lam_min, 0.0)) + 1e-3, 3)
    x_ref = solve(lam_ref)[0]
    out = {"n_params": n_params, "lambda_max": lam_max, "lambda_min": lam_min, "lambda_ref": lam_ref,
           "original": accs(model), "retrain_oracle": accs(oracle), "v_norm": float(np.linalg.norm(v_flat)),
           "exact": {}, "lissa": []}
    print("original", out["original"], "oracle", out["retrain_oracle"], flush=True)
    for lam in sorted({lam_ref, 1.0, 10.0}):
        x, resid, info = solve(lam)
        out["exact"][str(lam)] = {"norm": float(np.linalg.norm(x)), "residual": float(resid), "minres_info": int(info),
                                  "cos_to_ref": float(x @ x_ref / np.linalg.norm(x) / np.linalg.norm(x_ref)),
                                  **apply(x)}
        print("exact λ", lam, out["exact"][str(lam)], flush=True)

    top = 1.2 * lam_max  # a scale just above H's largest eigenvalue
    settings = [(0.01, 1000.0, 100, 64), (0.01, 1000.0, 1000, 64), (0.01, top, 100, 64), (0.01, top, 1000, 64),
                (0.02, top, 500, 64), (0.05, top, 200, 64)]
    for damping, scale, depth, bs in settings:
        scale = float(round(scale, 1))
        g = torch.Generator().manual_seed(a.seed)

        def batch_loss():
            idx = torch.randint(0, len(x_r), (min(bs, len(x_r)),), generator=g)
            return F.cross_entropy(model(x_r[idx]), y_r[idx])

        t0 = time.perf_counter()
        try:
            est = flat(lissa_inverse_hvp(batch_loss, params, v, damping=damping, scale=scale, depth=depth)).numpy()
        except FloatingPointError as exc:
            out["lissa"].append({"damping": damping, "scale": scale, "depth": depth, "batch_size": bs,
                                 "diverged": str(exc)})
            print(out["lissa"][-1], flush=True)
            continue
        seconds = time.perf_counter() - t0
        lam_eff = damping * scale
        target = solve(lam_eff)[0]
        rec = {"damping": damping, "scale": scale, "depth": depth, "batch_size": bs, "lambda_eff": lam_eff,
               "seconds": seconds,
               "cos_to_target": float(est @ target / np.linalg.norm(est) / np.linalg.norm(target)),
               "norm_ratio_to_target": float(np.linalg.norm(est) / np.linalg.norm(target)),
               "cos_to_ref": float(est @ x_ref / np.linalg.norm(est) / np.linalg.norm(x_ref)),
               "norm_ratio_to_ref": float(np.linalg.norm(est) / np.linalg.norm(x_ref)),
               "convergence_factor": float((1 - damping) ** depth), **apply(est)}
        out["lissa"].append(rec)
        print(rec, flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
