"""full_class: forget every training image of one class (JiT Table 2; CIFAR-100: rocket 69, mushroom 51, baby 2,
lamp 40, sea 71)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import ConfigError
from ..core.knobs import knob
from .base import Built, Scenario, register


@register
class FullClass(Scenario):
    name = "full_class"
    label = "Full Class"
    evaluation = "class"  # JiT's tables: see scenarios/base.py

    @dataclass
    class Options:
        forget_class: int = knob(0, low=0, help="the class forgotten")

    def plan(self, options, dataset, dataset_cfg, sizes, where):
        if options.forget_class >= sizes.n_classes:
            raise ConfigError(f"{where}.forget_class: {options.forget_class} is not a class of dataset {dataset}, "
                              f"whose classes are 0..{sizes.n_classes - 1}")
        return int(sizes.train[options.forget_class])

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

    def check_tuning(self, options, tuning_options, explicit, where):
        if "forget_class" in explicit and tuning_options.forget_class == options.forget_class:
            raise ConfigError(f"{where}.forget_class: the tuning request must forget another class than the "
                              f"evaluated one ({options.forget_class}); name another class or leave it out "
                              f"(default: the next class)")

    def build_tuning(self, data, options, rng, evaluated_forget_idx):
        """Another class: `tune_request.forget_class`, else the next class (cyclically) after the evaluated one that
        has training images. No test indices (the tune stage reads no test data)."""
        y = data.labels("train")
        c = options.forget_class
        if np.array_equal(np.flatnonzero(y == c), np.sort(evaluated_forget_idx)):
            present = set(np.unique(y).tolist()) - {c}
            if not present:
                raise ValueError("scenarios.full_class: no other class to tune on")
            c = next((c + i) % data.n_classes for i in range(1, data.n_classes + 1)
                     if (c + i) % data.n_classes in present)
        forget = np.flatnonzero(y == c)
        if len(forget) == 0:
            raise ValueError(f"scenarios.full_class.tune_request.forget_class={c}: no training image has this class")
        names = data.manifest.get("class_names", [])
        name = names[c] if c < len(names) else str(c)
        return Built(forget, f"tuning request: every training image of class {c} ({name}): {len(forget)} images",
                     extra={"forget_class": int(c), "forget_class_name": name})
