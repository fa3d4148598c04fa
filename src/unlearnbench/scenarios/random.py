"""random: forget a uniform share of the training points (UIB's 10% random data points)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..knobs import knob
from .base import Built, Scenario, register


def uniform_draw(n: int, n_forget: int, rng, problem: str):
    if not 0 < n_forget < n:
        raise ValueError(problem)
    return rng.permutation(n)[:n_forget]


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

    def build(self, data, options, rng):
        n = len(data.labels("train"))
        n_forget = int(round(options.fraction * n))
        forget = uniform_draw(n, n_forget, rng,
                              f"scenarios.random.fraction={options.fraction} leaves {n_forget} of {n} points")
        return Built(forget, f"{n_forget} training points drawn uniformly without replacement")
