"""The LR-entropy MIA (evaluation.metrics.mia_lr_entropy) against JiT's `get_membership_attack_prob`, called whole.

Reference: jwf40/Information-Theoretic-Unlearning @ c96761408b4997381c2feab4fbe613aa4c1f2b12, src/metrics.py
(`entropy`, `collect_prob`, `get_membership_attack_data`, `get_membership_attack_prob`), unchanged; its
`LogisticRegression(class_weight="balanced", solver="lbfgs", multi_class="multinomial")` needs scikit-learn < 1.8,
so the reference side runs in a child process with scikit-learn 1.5 first on the path, ours in this process with
the project's scikit-learn. Both sides get the same logits (the reference through loaders of (logits, _, label)
and a model that returns its input, so its softmax and entropy are its own).

Cases: `--cases` random problems (retain / test / forget logits over 10 classes, sizes 20-400, retain more confident
than test by a random margin, forget drawn between them), plus the digits models of reference_baselines.py.
Prints, for two binary fits (C = 1, what the metric did before; C = 2, the multinomial optimum's equivalent) and for
the metric as shipped (evaluation.metrics.TwoClassMultinomialLR), how many cases give a different MIA and how many
forget samples flip.

  pip install --target /tmp/sk15 scikit-learn==1.5.2   # once
  PYTHONPATH=src python benchmarks/lr_mia_reference.py --ref /tmp/ref/jit/itu/src --sklearn /tmp/sk15
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np


def cases(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sizes = rng.integers(20, 400, size=3)
        margin = rng.uniform(0.0, 3.0)
        scale = rng.uniform(0.5, 4.0)

        def logits(m, shift):
            z = rng.normal(size=(m, 10)) * scale
            z[np.arange(m), rng.integers(0, 10, size=m)] += shift
            return z
        out.append({"retain": logits(sizes[0], 2 + margin), "test": logits(sizes[1], 2),
                    "forget": logits(sizes[2], 2 + rng.uniform(0, margin))})
    return out


def reference_child(ref_src: str, path: str):
    """In the child (scikit-learn 1.5): the reference's get_membership_attack_prob on every case; predictions."""
    import torch

    sys.path.insert(0, ref_src)
    import metrics  # the reference's src/metrics.py

    class Identity(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x

    def loader(z):
        z = torch.as_tensor(z, dtype=torch.float32)
        data = torch.utils.data.TensorDataset(z, torch.zeros(len(z)), torch.zeros(len(z), dtype=torch.int64))
        return torch.utils.data.DataLoader(data, batch_size=128)

    results = []
    for case in load_cases(path):
        model = Identity()
        mia = metrics.get_membership_attack_prob(loader(case["retain"]), loader(case["forget"]),
                                                 loader(case["test"]), model)
        x_f, _, x_r, y_r = metrics.get_membership_attack_data(loader(case["retain"]), loader(case["forget"]),
                                                              loader(case["test"]), model)
        clf = metrics.LogisticRegression(class_weight="balanced", solver="lbfgs", multi_class="multinomial")
        clf.fit(x_r, y_r)
        results.append({"mia": float(mia), "pred": clf.predict(x_f).tolist()})
    import sklearn
    print(json.dumps({"sklearn": sklearn.__version__, "results": results}))


def save_cases(items, path):
    np.savez(path, **{f"{i}_{k}": v.astype(np.float32) for i, c in enumerate(items) for k, v in c.items()},
             n=np.array(len(items)))


def load_cases(path):
    data = np.load(path)
    return [{k: data[f"{i}_{k}"] for k in ("retain", "test", "forget")} for i in range(int(data["n"]))]


def ours(case, c: float):
    """Ours as a plain binary fit with regularisation C (the metric before; now for comparison only)."""
    from sklearn.linear_model import LogisticRegression

    from unlearnbench.evaluation import metrics

    h_r, h_t, h_f = (metrics.entropy_of_outputs(case[k]) for k in ("retain", "test", "forget"))
    x = np.concatenate([h_r, h_t]).reshape(-1, 1)
    y = np.concatenate([np.ones(h_r.size), np.zeros(h_t.size)])
    clf = LogisticRegression(class_weight="balanced", solver="lbfgs", C=c).fit(x, y)
    return clf.predict(h_f.reshape(-1, 1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ref", default=os.environ.get("JIT_REF_SRC", "/tmp/ref/jit/itu/src"))
    parser.add_argument("--sklearn", default="/tmp/sk15", help="a --target install of scikit-learn < 1.8")
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--pin", type=int, default=0, help="pin N cases where the binary fit flips, with the reference's outputs")
    parser.add_argument("--pin-file", default="tests/data/lr_mia_reference.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        reference_child(args.ref, args.child)
        return
    from unlearnbench.evaluation import metrics

    items = cases(args.cases)
    path = "/tmp/lr_mia_cases.npz"
    save_cases(items, path)
    items = load_cases(path)  # float32, as both sides read them
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([args.sklearn, os.environ.get("PYTHONPATH", "")]))
    child = subprocess.run([sys.executable, "-W", "ignore", __file__, "--child", path, "--ref", args.ref],
                           env=env, capture_output=True, text=True, check=True)
    ref = json.loads(child.stdout.strip().splitlines()[-1])
    import sklearn
    print(f"reference: scikit-learn {ref['sklearn']} (multinomial); ours: scikit-learn {sklearn.__version__}; "
          f"{len(items)} cases, {sum(len(c['forget']) for c in items)} forget samples")
    for form, c in (("binary, C = 1", 1.0), ("multinomial-equivalent, C = 2", 2.0)):
        cases_differ = samples_differ = 0
        max_mia = 0.0
        for case, r in zip(items, ref["results"]):
            pred = ours(case, c)
            flips = int((pred != np.asarray(r["pred"])).sum())
            samples_differ += flips
            cases_differ += flips > 0
            max_mia = max(max_mia, abs(pred.mean() - r["mia"]))
        print(f"ours ({form}): MIA differs in {cases_differ}/{len(items)} cases, {samples_differ} forget samples "
              f"flip; max |ΔMIA| {max_mia:.4f}")
    cases_differ = samples_differ = 0
    max_mia = 0.0
    for case, r in zip(items, ref["results"]):
        clf = metrics._entropy_attack(case["retain"], case["test"], seed=0)
        pred = clf.predict(metrics.entropy_of_outputs(case["forget"]).reshape(-1, 1))
        flips = int((pred != np.asarray(r["pred"])).sum())
        samples_differ += flips
        cases_differ += flips > 0
        mia = metrics.mia_lr_entropy(case["retain"], case["test"], case["forget"], seed=0)
        max_mia = max(max_mia, abs(mia - r["mia"]))
    print(f"evaluation.metrics.mia_lr_entropy as shipped: MIA differs in {cases_differ}/{len(items)} cases, "
          f"{samples_differ} forget samples flip; max |ΔMIA| {max_mia:.4f}")
    if args.pin:  # the cases where the old binary fit flipped a sample: their entropies and the reference's output
        hard = [i for i, (case, r) in enumerate(zip(items, ref["results"]))
                if (ours(case, 1.0) != np.asarray(r["pred"])).any()][:args.pin]
        pinned = {"reference": "jwf40/Information-Theoretic-Unlearning@c96761408b4997381c2feab4fbe613aa4c1f2b12 "
                               "src/metrics.py get_membership_attack_prob (run whole)",
                  "sklearn": ref["sklearn"], "made_by": "benchmarks/lr_mia_reference.py --pin " + str(args.pin),
                  "cases": [{**{k: metrics.entropy_of_outputs(items[i][k]).tolist()
                                for k in ("retain", "test", "forget")},
                             "mia": ref["results"][i]["mia"], "pred": ref["results"][i]["pred"]} for i in hard]}
        with open(args.pin_file, "w") as f:
            json.dump(pinned, f)
        print(f"pinned {len(hard)} cases (where the C = 1 binary fit flips a sample) in {args.pin_file}")


if __name__ == "__main__":
    main()
