"""random: forget a uniform share of the training points (UIB's 10% random data points)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import ConfigError, SizeError
from ..core.knobs import knob
from .base import Built, Scenario, register


def uniform_draw(n: int, n_forget: int, rng, problem: str):
    if not 0 < n_forget < n:
        raise ValueError(problem)
    return rng.permutation(n)[:n_forget]


def check_disjoint(n: int, n_tune: int, evaluated_n: int, dataset: str, where: str) -> None:
    """Config-time twin of disjoint_draw's check: a tuning request of n_tune points outside the evaluated forget
    set of evaluated_n points, among n training points."""
    if not 0 < n_tune < n - evaluated_n:
        raise SizeError(f"{where}: on dataset {dataset}, a tuning request of {n_tune} training images disjoint from "
                        f"the {evaluated_n} evaluated forget images needs more than {n_tune} of the other "
                        f"{n - evaluated_n}; give {where} a smaller size, or use more data")


def disjoint_draw(n: int, n_forget: int, evaluated_forget_idx, rng, what: str):
    """A tuning request's forget set: n_forget points drawn uniformly from the training points outside the
    evaluated forget set (so tuning never sees the points the table's D_f metrics are computed on)."""
    pool = np.setdiff1d(np.arange(n), evaluated_forget_idx)
    if not 0 < n_forget < len(pool):
        raise ValueError(f"{what}: a tuning request of {n_forget} points disjoint from the {n - len(pool)} "
                         f"evaluated forget points needs more than {n_forget} of the other {len(pool)} points; "
                         f"give scenarios.<name>.tune_request a smaller size")
    return np.sort(rng.permutation(pool)[:n_forget])


@register
class RandomPoints(Scenario):
    name = "random"
    label = "Random Data Points"
    evaluation = "sample"  # JiT's tables: see scenarios/base.py

    @dataclass
    class Options:
        fraction: float = knob(0.1, low=0.0, high=1.0, low_open=True, help="share of training points forgotten")

    def check(self, options, dataset, dataset_cfg, where):
        if options.fraction >= 1.0:
            raise ConfigError(f"{where}.fraction: must be < 1 (something must be retained), got {options.fraction}")

    def plan(self, options, dataset, dataset_cfg, sizes, where):
        n = int(sizes.train.sum())
        n_forget = int(round(options.fraction * n))
        if not 0 < n_forget < n:
            raise SizeError(f"{where}.fraction: {options.fraction} of the {n} training images of dataset {dataset} "
                              f"is {n_forget} images; something must be forgotten and something retained")
        return n_forget

    def build(self, data, options, rng):
        n = len(data.labels("train"))
        n_forget = int(round(options.fraction * n))
        forget = uniform_draw(n, n_forget, rng,
                              f"scenarios.random.fraction={options.fraction} leaves {n_forget} of {n} points")
        return Built(forget, f"{n_forget} training points drawn uniformly without replacement")

    def plan_tuning(self, tuning_options, evaluated_n, dataset, sizes, where):
        n = int(sizes.train.sum())
        check_disjoint(n, int(round(tuning_options.fraction * n)), evaluated_n, dataset, where)

    def build_tuning(self, data, options, rng, evaluated_forget_idx):
        n = len(data.labels("train"))
        n_forget = int(round(options.fraction * n))
        forget = disjoint_draw(n, n_forget, evaluated_forget_idx, rng, "scenarios.random (tuning request)")
        return Built(forget, f"tuning request: {n_forget} training points drawn uniformly without replacement "
                             f"from those outside the evaluated forget set")
