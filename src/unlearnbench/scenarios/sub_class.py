"""sub_class: train on coarse labels and forget one fine class inside its superclass (JiT Table 3, CIFAR-20:
rocket 69 in vehicles 2)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import ConfigError
from ..core.knobs import knob
from .base import Built, Scenario, register


@register
class SubClass(Scenario):
    name = "sub_class"
    label = "Sub-Class"

    @dataclass
    class Options:
        fine_class: int = knob(69, low=0, high=99, help="the fine class forgotten (labelled with its superclass)")

    evaluation = "class"

    def check(self, options, dataset, dataset_cfg, where):
        if dataset_cfg.get("labels", "fine") != "coarse":
            raise ConfigError(f"datasets.{dataset}.labels: the sub_class scenario trains on coarse "
                              f"labels and forgets one fine class; set labels: coarse (source cifar100, or a "
                              f"declared superclasses map) or leave {where.rpartition('.')[2]} out of "
                              f"datasets.{dataset}.scenarios")
        superclasses = dataset_cfg.get("superclasses")
        if superclasses:
            home = [name for name, members in superclasses.items() if options.fine_class in members]
            if not home:
                raise ConfigError(f"{where}.fine_class: {options.fine_class} is in no superclass of "
                                  f"datasets.{dataset}.superclasses")
            if len(superclasses[home[0]]) < 2:
                raise ConfigError(
                    f"{where}.fine_class: {options.fine_class} is the only fine class of superclass {home[0]!r} "
                    f"(datasets.{dataset}.superclasses), so forgetting it forgets the whole superclass (full-class "
                    f"forgetting); choose a fine class of a superclass with at least two: "
                    f"{', '.join(n for n, m in superclasses.items() if len(m) >= 2)}")

    def plan(self, options, dataset, dataset_cfg, sizes, where):
        """Approximate: the fine class's share of its superclass is drawn with the splits; CIFAR-100 puts 5 equal
        fine classes in every superclass, so this is the expected count (the request job checks the real one)."""
        return int(sizes.train.min()) // 5

    def build(self, data, options, rng):
        if "f_train" not in data.arrays:
            raise ValueError("scenarios.sub_class needs fine labels next to the training labels: set "
                             "labels: coarse (cifar100's 20 superclasses, or a declared superclasses map) to train "
                             "on superclasses and forget one fine class")
        fine = options.fine_class
        y = data.labels("train")
        forget = np.flatnonzero(data.arrays["f_train"] == fine)
        if len(forget) == 0:
            raise ValueError(f"scenarios.sub_class.fine_class={fine}: no training image has this fine class")
        coarse = np.unique(y[forget])
        if len(coarse) != 1:
            raise ValueError(f"scenarios.sub_class.fine_class={fine}: spans superclasses {coarse.tolist()}")
        siblings = np.unique(data.arrays["f_train"][y == coarse[0]])
        if len(siblings) < 2:
            raise ValueError(f"scenarios.sub_class.fine_class={fine}: the only fine class of its superclass "
                             f"{int(coarse[0])}; forgetting it is full-class forgetting (choose a fine class of a "
                             f"superclass with at least two)")
        fine_names = data.manifest.get("fine_class_names", [])
        fine_name = fine_names[fine] if fine < len(fine_names) else str(fine)
        coarse_name = data.manifest["class_names"][int(coarse[0])]
        return Built(forget,
                     f"every training image of fine class {fine} ({fine_name}) inside superclass {int(coarse[0])} "
                     f"({coarse_name}), labelled with the superclass: {len(forget)} images",
                     test_forget_idx=np.flatnonzero(data.arrays["f_test"] == fine),
                     extra={"fine_class": fine, "fine_class_name": fine_name, "coarse_class": int(coarse[0]),
                            "coarse_class_name": coarse_name})

    def check_tuning(self, options, tuning_options, explicit, where):
        if "fine_class" in explicit and tuning_options.fine_class == options.fine_class:
            raise ConfigError(f"{where}.fine_class: the tuning request must forget another fine class than the "
                              f"evaluated one ({options.fine_class}); name another or leave it out (default: the "
                              f"next fine class of the same superclass)")

    def build_tuning(self, data, options, rng, evaluated_forget_idx):
        """Another fine class: `tune_request.fine_class`, else the next fine class (cyclically, by index) inside the
        evaluated one's superclass. No test indices."""
        if "f_train" not in data.arrays:
            raise ValueError("scenarios.sub_class needs fine labels (labels: coarse on a cifar100 dataset)")
        fine_y, y = data.arrays["f_train"], data.labels("train")
        fine = options.fine_class
        if np.array_equal(np.flatnonzero(fine_y == fine), np.sort(evaluated_forget_idx)):
            coarse = int(y[evaluated_forget_idx[0]])
            siblings = sorted(set(np.unique(fine_y[y == coarse]).tolist()) - {fine})
            if not siblings:
                raise ValueError(f"scenarios.sub_class: superclass {coarse} has no other fine class to tune on; "
                                 f"name one in tune_request.fine_class")
            fine = next((f for f in siblings if f > fine), siblings[0])
        forget = np.flatnonzero(fine_y == fine)
        if len(forget) == 0:
            raise ValueError(f"scenarios.sub_class.tune_request.fine_class={fine}: no training image has this class")
        coarse = np.unique(y[forget])
        if len(coarse) != 1:
            raise ValueError(f"scenarios.sub_class.tune_request.fine_class={fine}: spans superclasses {coarse.tolist()}")
        fine_names = data.manifest.get("fine_class_names", [])
        fine_name = fine_names[fine] if fine < len(fine_names) else str(fine)
        return Built(forget, f"tuning request: every training image of fine class {fine} ({fine_name}) inside "
                             f"superclass {int(coarse[0])}: {len(forget)} images",
                     extra={"fine_class": int(fine), "fine_class_name": fine_name, "coarse_class": int(coarse[0])})
