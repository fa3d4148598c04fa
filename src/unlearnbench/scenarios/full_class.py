"""full_class: forget every training image of one class (JiT Table 2; CIFAR-100: rocket 69, mushroom 51, baby 2,
lamp 40, sea 71)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..knobs import knob
from .base import Built, Scenario, register


@register
class FullClass(Scenario):
    name = "full_class"
    label = "Full Class"
    evaluation = "class"  # JiT's tables: see scenarios/base.py

    @dataclass
    class Options:
        forget_class: int = knob(0, low=0, help="the class forgotten")

    def build(self, data, options, rng):
        c = options.forget_class
        if not 0 <= c < data.n_classes:
            raise ValueError(f"scenarios.full_class.forget_class={c}: this dataset has classes 0..{data.n_classes - 1}")
        y = data.labels("train")
        forget = np.flatnonzero(y == c)
        if len(forget) == 0:
            raise ValueError(f"scenarios.full_class.forget_class={c}: no training image has this class")
        names = data.manifest.get("class_names", [])
        name = names[c] if c < len(names) else str(c)
        return Built(forget, f"every training image of class {c} ({name}): {len(forget)} images",
                     test_forget_idx=np.flatnonzero(data.labels("test") == c),
                     extra={"forget_class": c, "forget_class_name": name})
