"""random_n: forget exactly n training points drawn uniformly (JiT's random 100)."""
from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import SizeError
from ..core.knobs import knob
from .base import Built, Scenario, register
from .random import check_disjoint, disjoint_draw, uniform_draw


@register
class RandomN(Scenario):
    name = "random_n"
    label = "Random Samples"
    evaluation = "sample"  # JiT's tables: see scenarios/base.py

    @dataclass
    class Options:
        n: int = knob(100, low=1, help="training points forgotten")

    def plan(self, options, dataset, dataset_cfg, sizes, where):
        total = int(sizes.train.sum())
        if options.n >= total:
            raise SizeError(f"{where}.n: {options.n} is not below the {total} training images of dataset {dataset} "
                              f"(something must be retained); give n <= {total - 1}")
        return options.n

    def build(self, data, options, rng):
        total = len(data.labels("train"))
        forget = uniform_draw(total, options.n, rng,
                              f"scenarios.random_n.n={options.n}: must be in 1..{total - 1} for {total} training points")
        return Built(forget, f"exactly {options.n} training points drawn uniformly without replacement")

    def plan_tuning(self, tuning_options, evaluated_n, dataset, sizes, where):
        check_disjoint(int(sizes.train.sum()), tuning_options.n, evaluated_n, dataset, where)

    def build_tuning(self, data, options, rng, evaluated_forget_idx):
        forget = disjoint_draw(len(data.labels("train")), options.n, evaluated_forget_idx, rng,
                               "scenarios.random_n (tuning request)")
        return Built(forget, f"tuning request: exactly {options.n} training points drawn uniformly without "
                             f"replacement from those outside the evaluated forget set")
