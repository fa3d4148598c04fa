"""JiT's table columns computed by the reference code and by ours, on the same models and data.

Reference: jwf40/Information-Theoretic-Unlearning @ c96761408b4997381c2feab4fbe613aa4c1f2b12 (code unchanged since
f207655), src/utils.py `evaluate` (D_r, D_f accuracies: the mean of per-batch accuracies) and src/metrics.py
`get_membership_attack_prob` (the LR-entropy MIA), called with loaders built as the reference's mains build them
(docs/jit.md): full class / random batch 128, sub-class batch 64; D_r = retain_valid_dl, D_f = forget_valid_dl, MIA on
(retain_train_dl, forget_train_dl, valid_dl). Ours: unlearnbench.evaluation.evaluate.compute_metrics on the saved outputs'
logits, the columns jit_report.COLUMNS reads.

The reference passes `multi_class="multinomial"` to LogisticRegression, which scikit-learn >= 1.8 rejects. Two
stand-ins are reported: `reference (binary)` drops the argument (what our metric does), `reference (multinomial)`
fits C = 2: for two classes the multinomial softmax with L2 on both weight vectors is the binary fit with half the
penalty (w0 = -w1 = w/2 at the optimum), i.e. C doubled.

  python benchmarks/jit_metrics_reference.py --results results/jit_digits --ref /path/to/Information-Theoretic-Unlearning/src
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np
import torch

from unlearnbench.nn import engine
from unlearnbench.evaluation import evaluate
from unlearnbench.artifacts.jit import report as jit_report
from unlearnbench.datasets.experiment import ExperimentData
from unlearnbench.scenarios import ForgetRequest
from unlearnbench.steps.training import load_model

BATCH = {"full_class": 128, "worst_case": 128, "random_n": 128, "random": 128, "sub_class": 64}


def loader(images, labels, batch_size):
    x = torch.as_tensor(images)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    y = torch.as_tensor(labels, dtype=torch.int64)
    data = torch.utils.data.TensorDataset(x, torch.zeros(len(y)), y)  # the reference's (x, fine-or-empty, label)
    return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)


def reference_columns(ref_metrics, ref_utils, model, data, req, kind, evaluation):
    bs = BATCH[kind]
    retain_train = loader(*req.retain_set(data), bs)
    forget_train = loader(*req.forget_set(data), bs)
    valid = loader(data.images("test"), data.labels("test"), bs)
    if evaluation == "class":
        retain_valid, forget_valid = loader(*req.test_retain_set(data), bs), loader(*req.test_forget_set(data), bs)
    else:
        retain_valid, forget_valid = valid, forget_train
    model.eval()
    out = {"d_r": ref_utils.evaluate(model, retain_valid, "cpu")["Acc"] / 100,
           "d_f": ref_utils.evaluate(model, forget_valid, "cpu")["Acc"] / 100}
    for name, c in (("mia (binary)", 1.0), ("mia (multinomial)", 2.0)):
        real = ref_metrics.LogisticRegression

        def patched(*args, multi_class=None, _real=real, _c=c, **kwargs):
            return _real(*args, C=_c, **kwargs)
        ref_metrics.LogisticRegression = patched
        try:
            out[name] = float(ref_metrics.get_membership_attack_prob(retain_train, forget_train, valid, model))
        finally:
            ref_metrics.LogisticRegression = real
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="a finished jit_digits (or similar) results folder")
    parser.add_argument("--ref", required=True, help="the reference repository's src/ folder")
    parser.add_argument("--runs", default="original,retrain,finetune,jit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, args.ref)
    ref_metrics, ref_utils = importlib.import_module("metrics"), importlib.import_module("utils")
    torch.set_num_threads(1)
    results = Path(args.results)
    worst = 0.0
    print("dataset/scenario/run | column | ours | reference (binary LR) | reference (multinomial = C 2) | |diff|")
    for request_json in sorted(results.glob("*/requests/*.json")):
        dataset, scenario = request_json.parts[-3], request_json.stem
        req = ForgetRequest.load(request_json.with_suffix(".npz"))
        kind = req.type
        data = ExperimentData.load(results / dataset / "data/experiment.npz")
        from unlearnbench.scenarios import REGISTRY, make_options

        cls, options = make_options(scenario, req.description["options"] | {"type": kind}, scenario)
        evaluation = cls().evaluation_of(options)
        if evaluation is None:
            continue
        for run in args.runs.split(","):
            path = (results / dataset / "baseline" / f"seed{args.seed}" / "model.pt" if run == "original" else
                    results / dataset / scenario / f"seed{args.seed}" / run / "model.pt")
            if not path.exists():
                continue
            model, _ = load_model(path, data, torch.device("cpu"))
            ours = evaluate.compute_metrics(evaluate.model_outputs(model, data, req, torch.device("cpu")),
                                            data.n_classes, seed=0)
            cols = jit_report.COLUMNS[evaluation]
            theirs = reference_columns(ref_metrics, ref_utils, model, data, req, kind, evaluation)
            for col, ref_key in (("d_r", "d_r"), ("d_f", "d_f"), ("mia", "mia (binary)")):
                mine = ours[cols[col]]
                diff = abs(mine - theirs[ref_key])
                worst = max(worst, diff) if col == "mia" else worst
                extra = f" | {theirs['mia (multinomial)']:.4f}" if col == "mia" else " | "
                print(f"{dataset}/{scenario}/{run} | {col} | {mine:.4f} | {theirs[ref_key]:.4f}{extra} | {diff:.2e}")
    print(f"largest MIA difference (ours vs reference with the binary LR): {worst:.2e}")


if __name__ == "__main__":
    main()
