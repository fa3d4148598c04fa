"""worst_case: forget the n samples of one class that the baseline's membership attack scores highest (JiT §6,
Table 6: "the 50 samples from class Rocket for which the MIA model outputs the highest probability").

The attack is the tables' LR-entropy MIA (metrics.mia_lr_entropy_scores): logistic regression on the softmax
entropy of the reference baseline's outputs, training samples of the other classes as members against the whole
test set as non-members (class_weight balanced), as JiT's code fits it for the forget class. Its probability on each
training sample of `forget_class` ranks them; the top `n` are forgotten (ranked by the attack's log-odds, a strictly
monotone function of the probability that does not saturate at 1.0; equal scores: lower training index first).

The reference is one trained model, the baseline of `reference_seed` (default 0), so the request is the same for
every seed, as every other request is. Retain set (`retain`):
  rest           every other training point, the class's other samples included (D_r = D \\ D_f: the retrain
                 oracle still learns the class); JiT's tables read it as a sample-level request (D_r accuracy on
                 the whole test set, D_f accuracy on the forgotten training samples), like random forgetting.
  other_classes  the training points of the other classes only, and class-level evaluation (D_r: retained-class
                 test images; D_f: the class's test images): what Table 6's numbers imply (its BSLN row has
                 Table 2b's rocket test accuracy, 77.0, and its RTRN row D_f 0.0, which a model that still saw 450
                 rockets would not reach). The class's other samples are then in neither set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import ConfigError, SizeError
from ..core.knobs import knob
from .base import Built, Scenario, register


def worst_case_indices(train_logits: np.ndarray, test_logits: np.ndarray, train_labels: np.ndarray,
                       forget_class: int, n: int, seed: int = 0) -> tuple[np.ndarray, dict]:
    """(indices of the top-n training samples of `forget_class` by the attack's membership probability, in rank
    order; a description of the attack and the scores of the chosen samples)."""
    from ..evaluation import metrics

    candidates = np.flatnonzero(train_labels == forget_class)
    members = np.flatnonzero(train_labels != forget_class)
    if n > len(candidates):
        raise ValueError(f"scenarios.worst_case.n={n}: class {forget_class} has only {len(candidates)} training "
                         f"samples")
    scores = metrics.mia_lr_entropy_scores(train_logits[members], test_logits, train_logits[candidates], seed=seed)
    order = np.lexsort((candidates, -scores["log_odds"]))  # highest log-odds first, then lower index
    chosen = order[:n]
    info = {"attack": "LR on softmax entropy (class_weight balanced): other classes' training samples (members) "
                      "vs the whole test set (non-members)",
            "attack_coef": scores["coef"], "attack_intercept": scores["intercept"],
            "n_candidates": int(len(candidates)),
            "chosen_probability_min": float(scores["probability"][chosen].min()),
            "chosen_probability_max": float(scores["probability"][chosen].max()),
            "candidate_probability_mean": float(scores["probability"].mean()),
            "candidates_called_members": float((scores["probability"] > 0.5).mean())}
    return candidates[chosen], info


@register
class WorstCase(Scenario):
    name = "worst_case"
    label = "Worst-Case Samples"
    needs_reference = True
    tunes_like = "full_class"  # no tuning request of its own (it needs a trained model): tuned_by a full_class one

    @dataclass
    class Options:
        forget_class: int = knob(0, low=0, help="the class whose samples are ranked")
        n: int = knob(50, low=1, help="samples forgotten (JiT: 50)")
        reference_seed: int = knob(0, low=0, help="the baseline whose attack ranks the samples (fixed across seeds)")
        retain: str = knob("rest", choices=("rest", "other_classes"), help="see the module docstring")

    def plan(self, options, dataset, dataset_cfg, sizes, where):
        c = options.forget_class
        if c >= sizes.n_classes:
            raise ConfigError(f"{where}.forget_class: {c} is not a class of dataset {dataset}, whose classes are "
                              f"0..{sizes.n_classes - 1}")
        available = int(sizes.train[c])
        if options.n > available:
            raise SizeError(f"{where}.n: {options.n} samples of class {c}, and dataset {dataset} will have "
                            f"{available} training images of that class; give n <= {available}, or use more data")
        return options.n

    def evaluation_of(self, options) -> str:
        return "class" if options.retain == "other_classes" else "sample"

    def build(self, data, options, rng, reference):
        c = options.forget_class
        if not 0 <= c < data.n_classes:
            raise ValueError(f"scenarios.worst_case.forget_class={c}: this dataset has classes "
                             f"0..{data.n_classes - 1}")
        y = data.labels("train")
        for split, n_rows in (("train", len(y)), ("test", len(data.labels("test")))):
            if reference[split].shape != (n_rows, data.n_classes):
                raise ValueError(f"scenarios.worst_case: the reference logits on {split} have shape "
                                 f"{reference[split].shape}, expected {(n_rows, data.n_classes)}")
        forget, info = worst_case_indices(reference["train"], reference["test"], y, c, options.n)
        names = data.manifest.get("class_names", [])
        name = names[c] if c < len(names) else str(c)
        other_classes = options.retain == "other_classes"
        return Built(forget,
                     f"the {options.n} training images of class {c} ({name}) that the reference baseline's LR-entropy "
                     f"membership attack scores highest (of {info['n_candidates']}); retain: "
                     + ("the other classes' training images" if other_classes else "every other training image"),
                     test_forget_idx=np.flatnonzero(data.labels("test") == c) if other_classes else None,
                     retain_idx=np.flatnonzero(y != c) if other_classes else None,
                     extra={"forget_class": c, "forget_class_name": name, "forget_rank_order": forget.tolist(),
                            "reference": reference.get("identity", {}), **info})
