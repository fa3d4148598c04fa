"""bias: forget a systematic pattern, the colour → label link of colour-biased data (UIB Fig. 2, "MNIST-C").

ΔD = the pattern points z_KL: `pattern_fraction` of the training images that carry their class colour, stratified
by class, as the model was trained on them. Their counterfactuals z̃ are the same images in colours drawn
independently of the label (what a method declaring `forget_counterfactual` reads: Warnecke et al.'s feature
replacement). D_r, what a method may read as retain data, is every other training image exactly as the baseline saw
it (no method reads re-coloured, i.e. de-biased, data the deployed model never had).

Two reference oracles, both trained from scratch on every training image, ΔD replaced by z̃:
  decorrelated    every other image re-coloured independently of its label too: the model that never learned the
                  colour → label link (what "forgetting the pattern" should reach);
  replace_forget  every other image in its training colour: Warnecke et al.'s exact oracle for replacing ΔD by z̃
                  (what retraining after the replacement gives; it still learns the link from D_r).
`oracle` names the one reported as `retrain` (RIP and the "vs Retrain" tests use it); with `second_reference`
the other is trained too and reported as its own reference row (`retrain_replace` / `retrain_decorrelated`).
See docs/methods.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datasets import colour as colour_mod
from ..core.errors import ConfigError, SizeError
from ..datasets.experiment import n_taken, stratified_split
from ..core.knobs import knob
from .base import RETRAIN, Built, Scenario, register

ORACLES = {
    "decorrelated": "every training image re-coloured independently of its label (ΔD as its counterfactuals z̃): "
                    "the model that never learned the colour → label link",
    "replace_forget": "the training set as the baseline saw it with ΔD replaced by its counterfactuals z̃ "
                      "(Warnecke et al.'s exact oracle for the replacement)",
}
SECOND_NAME = {"decorrelated": "retrain_decorrelated", "replace_forget": "retrain_replace"}


@register
class Bias(Scenario):
    name = "bias"
    label = "Patterns and Biases"

    @dataclass
    class Options:
        pattern_fraction: float = knob(0.1, low=0.0, high=1.0, low_open=True,
                                       help="share of the pattern points (images in their class colour) forgotten; "
                                            "UIB: '10% of the systematic-pattern-related features'")
        oracle: str = knob("decorrelated", choices=tuple(ORACLES),
                           help="the reported oracle (`retrain`): decorrelated (never learned the link) or "
                                "replace_forget (Warnecke et al.: only ΔD replaced by z̃)")
        second_reference: bool = knob(True, help="also train the other oracle, as a second reference row "
                                                 "(retrain_replace or retrain_decorrelated)")

    def check(self, options, dataset, dataset_cfg, where):
        if not dataset_cfg.get("colour", {}).get("enabled", True):
            raise ConfigError(f"datasets.{dataset}.colour.enabled: the bias scenario needs coloured "
                              f"data; enable colour or leave {where.rpartition('.')[2]} out of "
                              f"datasets.{dataset}.scenarios")
        colour_cfg, train_cfg = dataset_cfg.get("colour", {}), dataset_cfg.get("train", {})
        if colour_cfg.get("mode") == "patch" and train_cfg.get("augment", False):
            raise ConfigError(f"datasets.{dataset}.colour.mode: the corner patch does not survive "
                              f"train.augment (the random crop shifts it out of view, the flip moves it), so the "
                              f"baseline would not see the pattern on part of its training images; use mode: border "
                              f"(a class-coloured frame that every crop keeps, tests/test_scenarios.py) or "
                              f"train.augment: false")
        if options.pattern_fraction >= 1.0:
            raise ConfigError(f"{where}.pattern_fraction: must be < 1: a stratified share of every class's pattern "
                              f"points is forgotten and the rest retained, got {options.pattern_fraction}")

    @staticmethod
    def oracle_kinds(options) -> dict[str, str]:
        """Reference run name -> oracle construction (a key of ORACLES)."""
        names = {RETRAIN: options.oracle}
        if options.second_reference:
            other = next(o for o in ORACLES if o != options.oracle)
            names[SECOND_NAME[other]] = other
        return names

    def references(self, options):
        return {name: f"{kind}: {ORACLES[kind]}" for name, kind in self.oracle_kinds(options).items()}

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
        return self._built(options, forget_idx, colours, n_colours, rng,
                           f"pattern points z_KL: {len(forget_idx)} of the {len(follows_pattern)} training images that "
                           f"carry their class colour (feature set K = colour, label set L = class), stratified by "
                           f"class; counterfactuals z̃: the same images in colours drawn independently of the label; "
                           f"retain data D_r: every other training image as the baseline saw it",
                           {"n_pattern_points": int(len(follows_pattern))})

    def _built(self, options, forget_idx, colours, n_colours, rng, definition, extra=None):
        # z̃: the forget images in colours independent of the label; every reference oracle sees ΔD as exactly these
        counterfactual = colour_mod.random_colours(len(forget_idx), n_colours, rng)
        decorrelated = colour_mod.random_colours(len(colours), n_colours, rng)
        decorrelated[forget_idx] = counterfactual
        replaced = colours.copy()
        replaced[forget_idx] = counterfactual
        by_kind = {"decorrelated": decorrelated, "replace_forget": replaced}
        oracle_colours = {name: by_kind[kind] for name, kind in self.oracle_kinds(options).items()}
        return Built(forget_idx, definition, counterfactual_colours=counterfactual, oracle_colours=oracle_colours,
                     extra=extra)

    def build_tuning(self, data, options, rng, evaluated_forget_idx):
        """`pattern_fraction` of each class's pattern points (as `build` counts them), drawn among the pattern points
        outside the evaluated forget set; counterfactual and oracle colours drawn anew (same `oracle` option)."""
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
        return self._built(options, forget_idx, colours, n_colours, rng,
                           f"tuning request: {len(forget_idx)} pattern points outside the evaluated forget set (as "
                           f"many per class); counterfactual and oracle colours drawn anew")
