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
from ..errors import ConfigError, SizeError
from ..experiment import n_taken, stratified_split
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

    def plan(self, options, dataset, dataset_cfg, sizes, where):
        """Exact at bias_strength 1 (every training image carries its class colour); below, the images that carry it
        by chance are drawn with the data, and this is the expected count (the request job checks the real one)."""
        colour = dataset_cfg.get("colour") or {}
        strength = colour.get("bias_strength", 1.0)
        palette = colour.get("palette", "tab10")
        n_colours = len(colour_mod.TAB10) if isinstance(palette, str) else len(palette)
        forget = 0
        for c, n in enumerate(sizes.train.tolist()):
            biased = int(round(strength * n))
            pattern = biased + int((n - biased) / n_colours)
            try:
                forget += n_taken(options.pattern_fraction, pattern)
            except ValueError:
                raise SizeError(
                    f"{where}.pattern_fraction: class {c} of dataset {dataset} has about {pattern} training images in "
                    f"its class colour, too few to forget {options.pattern_fraction:.0%} of them and retain the rest "
                    f"(stratified by class: at least one forgotten and one retained per class); lower pattern_fraction"
                    f" or use more data (datasets.{dataset}.split.train_size)") from None
        return forget

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
