"""sub_class: train on coarse labels and forget one fine class inside its superclass (JiT Table 3, CIFAR-20:
rocket 69 in vehicles 2)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..knobs import knob
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
