"""random_n: forget exactly n training points drawn uniformly (JiT's random 100)."""
from __future__ import annotations

from dataclasses import dataclass

from ..knobs import knob
from .base import Built, Scenario, register
from .random import uniform_draw


@register
class RandomN(Scenario):
    name = "random_n"
    label = "Random Samples"
    evaluation = "sample"  # JiT's tables: see scenarios/base.py

    @dataclass
    class Options:
        n: int = knob(100, low=1, help="training points forgotten")

    def build(self, data, options, rng):
        total = len(data.labels("train"))
        forget = uniform_draw(total, options.n, rng,
                              f"scenarios.random_n.n={options.n}: must be in 1..{total - 1} for {total} training points")
        return Built(forget, f"exactly {options.n} training points drawn uniformly without replacement")
