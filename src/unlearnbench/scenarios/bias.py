"""bias: forget a systematic pattern, the colour → label link of colour-biased data (UIB Fig. 2, "MNIST-C").

ΔD = the pattern points z_KL: `pattern_fraction` of the training images that carry their class colour, stratified
by class, as the model was trained on them. The oracle trains on the same images with the colour feature
removed, i.e. re-coloured independently of the label (`oracle: decorrelated`); `replace_forget` re-colours only
ΔD (Warnecke et al.'s exact oracle for a feature replacement). See docs/methods.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import colour as colour_mod
from ..errors import ConfigError
from ..experiment import stratified_split
from ..knobs import knob
from .base import Built, Scenario, register


@register
class Bias(Scenario):
    name = "bias"
    label = "Patterns and Biases"

    @dataclass
    class Options:
        pattern_fraction: float = knob(0.1, low=0.0, high=1.0, low_open=True,
                                       help="UIB: '10% of the systematic-pattern-related features'")
        oracle: str = knob("decorrelated", choices=("decorrelated", "replace_forget"))

    def check(self, options, dataset, dataset_cfg, where):
        if not dataset_cfg.get("colour", {}).get("enabled", True):
            raise ConfigError(f"datasets.{dataset}.colour.enabled: the bias scenario needs coloured "
                              f"data; enable colour or leave {where.rpartition('.')[2]} out of "
                              f"datasets.{dataset}.scenarios")
        if options.pattern_fraction >= 1.0:
            raise ConfigError(f"{where}.pattern_fraction: must be < 1: a stratified share of every class's pattern "
                              f"points is forgotten and the rest retained, got {options.pattern_fraction}")

    def build(self, data, options, rng):
        if not data.coloured:
            raise ValueError("scenarios.bias needs a coloured dataset: set colour.enabled: true for this dataset")
        y = data.labels("train")
        colours = data.colours("train")
        n_colours = data.manifest["colour"]["n_colours"]
        follows_pattern = np.flatnonzero(colours == y % n_colours)
        if len(follows_pattern) == 0:
            raise ValueError("scenarios.bias: no training image carries its class colour (bias_strength is 0)")
        _, forget_idx = stratified_split(y[follows_pattern], options.pattern_fraction, rng)
        forget_idx = np.sort(follows_pattern[forget_idx])
        oracle_colours = colours.copy()
        if options.oracle == "decorrelated":
            oracle_colours = colour_mod.random_colours(len(y), n_colours, rng)
        else:  # replace_forget
            oracle_colours[forget_idx] = colour_mod.random_colours(len(forget_idx), n_colours, rng)
        return Built(forget_idx,
                     f"pattern points z_KL: {len(forget_idx)} training images that carry their class colour "
                     f"(feature set K = colour, label set L = class), stratified by class; "
                     f"oracle colours: {options.oracle}",
                     oracle_colours=oracle_colours)

    def build_tuning(self, data, options, rng, evaluated_forget_idx):
        """`pattern_fraction` of each class's pattern points (as `build` counts them), drawn among the pattern points
        outside the evaluated forget set; the oracle's colours drawn anew (same `oracle` option)."""
        y = data.labels("train")
        colours = data.colours("train")
        n_colours = data.manifest["colour"]["n_colours"]
        pattern = np.flatnonzero(colours == y % n_colours)
        pool = np.setdiff1d(pattern, evaluated_forget_idx)
        forget = []
        for c in np.unique(y[pattern]):
            need = max(1, int(round(options.pattern_fraction * np.sum(y[pattern] == c))))
            members = pool[y[pool] == c]
            if need >= len(members):
                raise ValueError(f"scenarios.bias (tuning request): class {c} has {len(members)} pattern points "
                                 f"outside the evaluated forget set, too few to forget {need} and retain some; lower "
                                 f"pattern_fraction")
            forget.append(rng.permutation(members)[:need])
        forget_idx = np.sort(np.concatenate(forget))
        oracle_colours = colours.copy()
        if options.oracle == "decorrelated":
            oracle_colours = colour_mod.random_colours(len(y), n_colours, rng)
        else:
            oracle_colours[forget_idx] = colour_mod.random_colours(len(forget_idx), n_colours, rng)
        return Built(forget_idx,
                     f"tuning request: {len(forget_idx)} pattern points outside the evaluated forget set (as many per "
                     f"class); oracle colours: {options.oracle}",
                     oracle_colours=oracle_colours)
