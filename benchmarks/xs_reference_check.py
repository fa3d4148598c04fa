"""Our Xu & Strohmer code against the authors' (xushizhou/Machine_Unlearn_via_Info_Reg), on identical inputs.

The authors' script is imported from a checkout (never copied here):

    git clone https://github.com/xushizhou/Machine_Unlearn_via_Info_Reg /tmp/xs_repo   # commit ca32703
    PYTHONPATH=src python benchmarks/xs_reference_check.py --repo /tmp/xs_repo [--json out.json]

Checks:
1. `compute_mutual_information_multiclass` vs unlearnbench.evaluation.mutual_info on the worked 2×2 example, on random
   logits with the authors' batch construction (64 remain + 16 unlearn + the 64 remain again) and with random
   binary Z, in float32 and float64: values and gradients w.r.t. the logits.
2. `train_unlearn_model` (one epoch) vs methods/marginal_mi.py's step on the authors' MLP, same initial weights,
   the same batches in the same order (unshuffled loaders on synthetic 28×28 data), torch.optim.Adam vs our Adam:
   the largest weight difference after the epoch, for our two-pass step (their forward passes) and our one-pass
   step (the default in eval mode).
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
from pathlib import Path

import torch


def load_reference(repo: Path):
    path = repo / "Data_Unlearning_MNIST_Plot.py"
    spec = importlib.util.spec_from_file_location("xs_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions only (its experiment sits under __main__)
    module.device = torch.device("cpu")
    return module


def mi_checks(ref) -> dict:
    from unlearnbench.evaluation.mutual_info import mixture_groups, mutual_information

    out = {}
    probs = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]], dtype=torch.float64)
    z = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    out["worked_2x2"] = {"reference": float(ref.compute_mutual_information_multiclass(torch.log(probs), z)),
                         "ours": float(mutual_information(torch.log(probs), z, 2))}
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        for case in ("mixture", "random_z"):
            worst_value = worst_grad = 0.0
            for trial in range(20):
                logits = (3 * torch.randn(144, 10, generator=g)).to(dtype)
                if case == "mixture":
                    z = mixture_groups(64, 16).to(dtype)
                else:
                    z = (torch.rand(144, generator=g) < 0.4).to(dtype)
                a = logits.clone().requires_grad_(True)
                b = logits.clone().requires_grad_(True)
                ra = ref.compute_mutual_information_multiclass(a, z)
                rb = mutual_information(b, z, 2)
                ra.backward()
                rb.backward()
                worst_value = max(worst_value, abs(float(ra.detach()) - float(rb.detach())))
                worst_grad = max(worst_grad, float((a.grad - b.grad).abs().max()))
            out[f"{case}_{str(dtype).split('.')[-1]}"] = {"max_abs_value_diff": worst_value,
                                                          "max_abs_grad_diff": worst_grad}
    return out


def loop_check(ref, two_pass: bool) -> dict:
    from torch.utils.data import DataLoader, TensorDataset

    from unlearnbench.methods.marginal_mi import marginal_step
    from unlearnbench.nn.optim import Adam

    g = torch.Generator().manual_seed(1)
    x_r, y_r = torch.randn(256, 1, 28, 28, generator=g), torch.randint(0, 10, (256,), generator=g)
    # unlearn images shifted, so that the model's mean softmax differs between the groups (a non-trivial MI term)
    x_u, y_u = torch.randn(44, 1, 28, 28, generator=g) + 2.0, torch.full((44,), 3)
    torch.manual_seed(0)
    theirs = ref.MNISTClassifier()
    ours = copy.deepcopy(theirs)
    initial = copy.deepcopy(theirs)
    remain_loader = DataLoader(TensorDataset(x_r, y_r), batch_size=64, shuffle=False)
    unlearn_loader = DataLoader(TensorDataset(x_u, y_u), batch_size=16, shuffle=False)
    ref.test_loader = DataLoader(TensorDataset(x_r[:32], y_r[:32]), batch_size=64)
    gamma = 3.5
    history = ref.train_unlearn_model(theirs, unlearn_loader, remain_loader, torch.nn.CrossEntropyLoss(),
                                      torch.optim.Adam(theirs.parameters(), lr=1e-3), gamma=gamma, epochs=1)
    optimizer = Adam(ours.parameters(), lr=1e-3)
    ours.train()
    ces, mis = [], []
    for (xb, yb), (xu, _) in zip(remain_loader, unlearn_loader):
        ce, mi = marginal_step(ours, optimizer, xb, yb, xu, gamma, two_pass)
        ces.append(ce)
        mis.append(mi)
    diff = max(float((p - q).abs().max()) for p, q in zip(theirs.parameters(), ours.parameters()))
    moved = max(float((p - q).abs().max()) for p, q in zip(initial.parameters(), ours.parameters()))
    return {"steps": len(ces), "max_abs_weight_diff": diff,
            "epoch_mean_mi": {"reference": history[1][0], "ours": sum(mis) / len(mis)},
            "epoch_mean_ce": {"reference": history[0][0], "ours": sum(ces) / len(ces)},
            "weights_moved_by": moved}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, required=True, help="checkout of xushizhou/Machine_Unlearn_via_Info_Reg")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ref = load_reference(args.repo)
    result = {"mi": mi_checks(ref), "loop_two_pass": loop_check(ref, True), "loop_one_pass": loop_check(ref, False)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
