"""The population stage's metrics against their reference code, on identical arrays (docs/forget_quality.md).

- the NeurIPS 2023 unlearning challenge's metric.py (google-deepmind/unlearning_evaluation @ ffae0ff):
  compute_logit_scaled_confidence, _get_epsilons, compute_forget_score_from_confs, called whole as main.py calls
  them. Two changes are made to the loaded text, in memory: `.cuda()` returns the tensor itself (no GPU here), and
  `assert thr_eps` becomes `assert len(thr_eps)`: as released the assertion raises "The truth value of an array with
  more than one element is ambiguous" on every example that reaches it, so the released function cannot run.
- data-unlearning-bench's compute_binned_KL_div (RoyRin/data-unlearning-bench @ eb261f9, unlearning_bench/eval.py),
  KLoM's per-example KL, called whole.
- bad-teaching-unlearning's JSDiv (vikram2000b/bad-teaching-unlearning @ f1aa988, metrics.py), as its
  UnLearningScore (ZRF) calls it: 1 - JSDiv(softmax(model), softmax(incompetent teacher)) on the forget set.

Inputs are synthetic populations drawn from a fixed seed per case (Gaussian confidences with known separation,
a near-constant "peaky" population, heavy ties, raw logits for the confidence transform). Printed: per case the
largest |ε difference|, the number of examples whose ε differ, and both scores. `--pin FILE` writes the reference's
outputs with the case definitions, which tests/test_population.py checks our implementation against (so CI needs
neither checkout).

  git -C /work/.mirror/google-deepmind+unlearning_evaluation/repo show ffae0ff:metric.py > /tmp/ref_metric.py
  git -C /work/.mirror/RoyRin+data-unlearning-bench/repo show eb261f9:unlearning_bench/eval.py > /tmp/ref_eval.py
  git -C /work/.mirror/vikram2000b+bad-teaching-unlearning/repo show f1aa988:metrics.py > /tmp/ref_zrf.py
  PYTHONPATH=src python benchmarks/population_reference.py --metric /tmp/ref_metric.py --klom /tmp/ref_eval.py \
      --zrf /tmp/ref_zrf.py --pin tests/data/population_reference.json
"""
from __future__ import annotations

import argparse
import json
import sys
import types

import numpy as np
import torch

from unlearnbench.evaluation import population as ours

CHALLENGE_COMMIT = "ffae0ff"
KLOM_COMMIT = "eb261f9"
ZRF_COMMIT = "f1aa988"

# name -> (models, examples, shift of the unlearned population in s.d., unlearned s.d. scale, seed)
CASES = {
    "same_n16": (16, 40, 0.0, 1.0, 1),
    "same_n64": (64, 20, 0.0, 1.0, 2),
    "shift1_n16": (16, 40, 1.0, 1.0, 3),
    "shift1_n128": (128, 10, 1.0, 1.0, 4),
    "shift3_narrow_n32": (32, 30, 3.0, 0.3, 5),
    "wide_n8": (8, 30, -0.5, 2.5, 6),
    "peaky_n16": (16, 10, 0.5, 0.001, 7),
    "n4": (4, 30, 0.7, 1.0, 8),
    "ties_n16": (16, 30, 0.5, 1.0, 9),
}


def population(case: str) -> tuple[np.ndarray, np.ndarray]:
    """(unlearned, retrained) confidences [models, examples] of a case; per example a base location and scale."""
    n, e, shift, scale, seed = CASES[case]
    rng = np.random.default_rng(seed)
    loc, sd = rng.normal(2.0, 3.0, e), rng.uniform(0.3, 2.0, e)
    retrained = loc + sd * rng.standard_normal((n, e))
    unlearned = loc + shift * sd + scale * sd * rng.standard_normal((n, e))
    if case.startswith("ties"):
        retrained, unlearned = np.round(retrained, 1), np.round(unlearned, 1)
    return unlearned, retrained


def logits_case(seed: int = 11, n: int = 64, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((n, classes)) * rng.uniform(0.1, 40, (n, 1))).astype(np.float32)
    return logits, rng.integers(0, classes, n)


def zrf_case(seed: int, scale: float, n: int = 50, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(model logits, incompetent-teacher logits), float32, as the forget-set outputs of the two models."""
    rng = np.random.default_rng(seed)
    model = (rng.standard_normal((n, classes)) * scale).astype(np.float32)
    return model, (rng.standard_normal((n, classes)) * 0.1).astype(np.float32)


def load_metric(path: str) -> types.ModuleType:
    text = open(path).read()
    assert text.count("assert thr_eps,") == 1, "not metric.py @ ffae0ff"
    text = text.replace("assert thr_eps,", "assert len(thr_eps),")
    module = types.ModuleType("reference_metric")
    exec(compile(text, path, "exec"), module.__dict__)
    return module


def load_klom(path: str) -> types.ModuleType:
    sys.modules.setdefault("tqdm", types.SimpleNamespace(tqdm=lambda x, **k: x))
    paths = types.ModuleType("unlearning_bench.paths")
    paths.EVAL_DIR = paths.DATA_DIR = "/nonexistent"
    sys.modules.setdefault("unlearning_bench", types.ModuleType("unlearning_bench"))
    sys.modules["unlearning_bench.paths"] = paths
    module = types.ModuleType("reference_eval")
    exec(compile(open(path).read(), path, "exec"), module.__dict__)
    return module


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metric", required=True, help="metric.py of google-deepmind/unlearning_evaluation @ ffae0ff")
    parser.add_argument("--klom", required=True, help="unlearning_bench/eval.py of RoyRin/data-unlearning-bench")
    parser.add_argument("--zrf", required=True, help="metrics.py of vikram2000b/bad-teaching-unlearning @ f1aa988")
    parser.add_argument("--pin", help="write the reference outputs here (JSON)")
    args = parser.parse_args(argv)
    torch.Tensor.cuda = lambda self, *a, **k: self  # the reference's .cuda() calls: no GPU here
    ref, ref_klom = load_metric(args.metric), load_klom(args.klom)

    pinned = {"challenge_commit": CHALLENGE_COMMIT, "klom_commit": KLOM_COMMIT, "zrf_commit": ZRF_COMMIT,
              "cases": {}}
    print(f"challenge metric.py @ {CHALLENGE_COMMIT} (cuda no-op, `assert len(thr_eps)`); KLoM eval.py @ {KLOM_COMMIT}")
    for case in CASES:
        unlearned, retrained = population(case)
        # the reference's per-example ε, as compute_forget_score_from_confs computes them
        positive = np.median(retrained, 0) > np.median(unlearned, 0)
        pos, neg = np.where(positive, retrained, unlearned), np.where(positive, unlearned, retrained)
        ref_eps = np.asarray(ref._get_epsilons(pos, neg, delta=ref.DELTA), np.float64)
        ref_score = float(ref.compute_forget_score_from_confs(unlearned.copy(), retrained.copy()))
        score, eps, _ = ours.forget_score(unlearned, retrained)
        diff = np.abs(ref_eps - eps.astype(np.float64))
        ref_kl = np.array([ref_klom.compute_binned_KL_div(unlearned[:, i], retrained[:, i])
                           for i in range(unlearned.shape[1])])
        kl = ours.klom(unlearned, retrained)
        print(f"{case:18s} N={unlearned.shape[0]:3d} E={unlearned.shape[1]:3d}: ε max |diff| {diff.max():.3g} "
              f"({int((diff > 0).sum())} of {len(diff)} differ); score ref {ref_score:.6f} ours {score:.6f}; "
              f"KLoM max |diff| {np.abs(ref_kl - kl).max():.3g}")
        pinned["cases"][case] = {"definition": CASES[case], "epsilons": ref_eps.tolist(), "score": ref_score,
                                 "klom": ref_kl.tolist()}
    logits, labels = logits_case()
    _, ref_conf = ref.compute_logit_scaled_confidence(logits.copy(), labels)
    conf = ours.logit_scaled_confidence(logits, labels)
    print(f"logit-scaled confidence: max |diff| {np.abs(ref_conf - conf).max():.3g}")
    pinned["confidence"] = np.asarray(ref_conf, np.float64).tolist()
    zrf_module = types.ModuleType("reference_zrf")
    exec(compile(open(args.zrf).read(), args.zrf, "exec"), zrf_module.__dict__)
    pinned["zrf"] = []
    for seed, scale in ((12, 1.0), (13, 8.0), (14, 0.05)):
        model, teacher = zrf_case(seed, scale)
        soft = torch.nn.functional.softmax
        ref_zrf = float(1 - zrf_module.JSDiv(soft(torch.from_numpy(model), dim=1), soft(torch.from_numpy(teacher), dim=1)))
        print(f"ZRF (scale {scale}): ref {ref_zrf:.9f} ours {ours.zrf(model, teacher):.9f} "
              f"|diff| {abs(ref_zrf - ours.zrf(model, teacher)):.3g}")
        pinned["zrf"].append({"seed": seed, "scale": scale, "value": ref_zrf})
    if args.pin:
        with open(args.pin, "w") as f:
            json.dump(pinned, f, indent=1)
        print(f"pinned to {args.pin}")


if __name__ == "__main__":
    main()
