"""Experiment data: splits, colour bias and forget requests, built once from a prepared dataset.

Everything here is numpy only (no torch), so the data rules start fast.
Layout on disk (`results/{dataset}/data/`):
  experiment.npz   gray or RGB images for train / val / test, labels, colour index per image, palette
  experiment.json  sizes, class names, colour settings, normalisation statistics, content hashes
Requests (`results/{dataset}/requests/{scenario}.npz` + `.json`) hold indices into the train split and,
for the bias scenario, the colours the oracle's training set uses.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import colour as colour_mod
from .io import atomic_write_json, atomic_save_npz

SPLITS = ("train", "val", "test")


def stratified_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, taken) with `fraction` of every class taken (at least one per class)."""
    labels = np.asarray(labels)
    taken = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_take = max(1, int(round(fraction * len(members))))
        if n_take >= len(members):
            raise ValueError(f"class {c} has {len(members)} images: too few to take a {fraction:.0%} split")
        taken.append(members[:n_take])
    taken = np.sort(np.concatenate(taken))
    kept = np.setdiff1d(np.arange(len(labels)), taken)
    return kept, taken


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def build_experiment(raw: dict, *, split: dict, colour: dict, data_seed: int) -> tuple[dict, dict]:
    """From a prepared raw dataset to the arrays and manifest of one experiment.

    The validation split is carved from training data; sources without an official test split (digits)
    also get a stratified test split. Both with `data_seed`, so they are the same for every training seed.
    """
    rng = np.random.default_rng([data_seed, 0xDA7A])
    x_train, y_train = np.asarray(raw["x_train"]), np.asarray(raw["y_train"], dtype=np.int64)
    if len(raw.get("y_test", [])) > 0:
        x_test, y_test = np.asarray(raw["x_test"]), np.asarray(raw["y_test"], dtype=np.int64)
    else:
        kept, taken = stratified_split(y_train, split["test_fraction"], rng)
        x_test, y_test = x_train[taken], y_train[taken]
        x_train, y_train = x_train[kept], y_train[kept]
    kept, taken = stratified_split(y_train, split["val_fraction"], rng)
    arrays = {
        "x_train": x_train[kept], "y_train": y_train[kept],
        "x_val": x_train[taken], "y_val": y_train[taken],
        "x_test": x_test, "y_test": y_test,
    }
    n_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max()) + 1)
    manifest = {
        "n_classes": n_classes,
        "class_names": list(raw.get("manifest", {}).get("class_names", [str(c) for c in range(n_classes)])),
        "data_seed": data_seed,
        "colour": None,
    }
    if colour.get("enabled", False):
        if x_train.ndim != 3:
            raise ValueError(
                "colour.enabled: the colour-bias construction needs grayscale images; this source is RGB "
                "(set colour.enabled: false for it)"
            )
        palette = colour_mod.make_palette(colour["palette"], n_classes)
        arrays["palette"] = palette
        arrays["c_train"] = colour_mod.class_colours(arrays["y_train"], colour["bias_strength"], len(palette), rng)
        arrays["c_val"] = colour_mod.class_colours(arrays["y_val"], colour["bias_strength"], len(palette), rng)
        arrays["c_test"] = colour_mod.random_colours(len(arrays["y_test"]), len(palette), rng)
        manifest["colour"] = {
            "mode": colour["mode"], "bias_strength": colour["bias_strength"], "n_colours": len(palette),
        }
    data = ExperimentData(arrays, manifest)
    train_rgb = data.images("train")
    manifest["channels"] = int(train_rgb.shape[-1]) if train_rgb.ndim == 4 else 1
    manifest["image_size"] = list(train_rgb.shape[1:3])
    flat = train_rgb.reshape(len(train_rgb), -1, manifest["channels"]).astype(np.float64) / 255.0
    manifest["mean"] = flat.mean(axis=(0, 1)).tolist()
    manifest["std"] = flat.std(axis=(0, 1)).tolist()
    manifest["sizes"] = {s: int(len(arrays[f"y_{s}"])) for s in SPLITS}
    manifest["sha256"] = {k: _sha256(v) for k, v in arrays.items()}
    return arrays, manifest


@dataclass
class ExperimentData:
    """The arrays of one experiment with helpers that render images (uint8, NHWC or NHW)."""

    arrays: dict
    manifest: dict

    @classmethod
    def load(cls, npz_path: str | os.PathLike) -> "ExperimentData":
        npz_path = Path(npz_path)
        with np.load(npz_path) as z:
            arrays = {k: z[k] for k in z.files}
        manifest = json.loads(npz_path.with_suffix(".json").read_text())
        return cls(arrays, manifest)

    def save(self, npz_path: str | os.PathLike) -> None:
        npz_path = Path(npz_path)
        atomic_save_npz(npz_path, self.arrays)
        atomic_write_json(npz_path.with_suffix(".json"), self.manifest)

    @property
    def coloured(self) -> bool:
        return self.manifest.get("colour") is not None

    @property
    def n_classes(self) -> int:
        return int(self.manifest["n_classes"])

    def labels(self, split: str) -> np.ndarray:
        return self.arrays[f"y_{split}"]

    def colours(self, split: str) -> np.ndarray | None:
        return self.arrays.get(f"c_{split}")

    def images(self, split: str, indices: np.ndarray | None = None, colours: np.ndarray | None = None) -> np.ndarray:
        """Images of a split (optionally a subset), rendered with their own colours or with `colours`."""
        x = self.arrays[f"x_{split}"]
        idx = np.arange(len(x)) if indices is None else np.asarray(indices)
        if not self.coloured:
            return x[idx]
        if colours is None:
            colours = self.arrays[f"c_{split}"][idx]
        return colour_mod.render(x[idx], colours, self.arrays["palette"], self.manifest["colour"]["mode"])


# ---------------------------------------------------------------------------------------------- requests

@dataclass
class ForgetRequest:
    """What to forget and what the retrain oracle trains on, as indices into the train split.

    forget_idx:     ΔD, the training points whose information is to be removed
    retain_idx:     the other training points
    oracle_colours: (bias only) colours of every training image in the oracle's training set D \\ ΔD;
                    the forget points' counterfactuals z̃ are the forget images in these colours.
    """

    scenario: str
    forget_idx: np.ndarray
    retain_idx: np.ndarray
    oracle_colours: np.ndarray | None
    description: dict

    @classmethod
    def load(cls, npz_path: str | os.PathLike) -> "ForgetRequest":
        npz_path = Path(npz_path)
        with np.load(npz_path) as z:
            oracle_colours = z["oracle_colours"] if "oracle_colours" in z.files else None
            forget_idx, retain_idx = z["forget_idx"], z["retain_idx"]
        description = json.loads(npz_path.with_suffix(".json").read_text())
        return cls(description["scenario"], forget_idx, retain_idx, oracle_colours, description)

    def save(self, npz_path: str | os.PathLike) -> None:
        npz_path = Path(npz_path)
        arrays = {"forget_idx": self.forget_idx, "retain_idx": self.retain_idx}
        if self.oracle_colours is not None:
            arrays["oracle_colours"] = self.oracle_colours
        atomic_save_npz(npz_path, arrays)
        atomic_write_json(npz_path.with_suffix(".json"), self.description)

    def oracle_training_set(self, data: ExperimentData) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of D \\ ΔD, the set the retrain oracle learns from."""
        if self.scenario == "bias":
            return data.images("train", colours=self.oracle_colours), data.labels("train")
        return data.images("train", self.retain_idx), data.labels("train")[self.retain_idx]

    def retain_set(self, data: ExperimentData) -> tuple[np.ndarray, np.ndarray]:
        """The retain data a method may read: the oracle's training set without the forget points."""
        colours = None if self.oracle_colours is None else self.oracle_colours[self.retain_idx]
        return data.images("train", self.retain_idx, colours), data.labels("train")[self.retain_idx]

    def forget_set(self, data: ExperimentData) -> tuple[np.ndarray, np.ndarray]:
        """ΔD as the model was trained on it (for the bias scenario: the pattern points z in their class colour)."""
        return data.images("train", self.forget_idx), data.labels("train")[self.forget_idx]

    def forget_counterfactual(self, data: ExperimentData) -> tuple[np.ndarray, np.ndarray] | None:
        """z̃ for the bias scenario: the forget images with the pattern (colour) replaced; None otherwise."""
        if self.oracle_colours is None:
            return None
        colours = self.oracle_colours[self.forget_idx]
        return data.images("train", self.forget_idx, colours), data.labels("train")[self.forget_idx]


def make_request(scenario: str, data: ExperimentData, options: dict, data_seed: int) -> ForgetRequest:
    """Build the forget request of a scenario. The same request serves every seed (see docs/methods.md)."""
    rng = np.random.default_rng([data_seed, 0xF0, sum(map(ord, scenario))])
    y = data.labels("train")
    n = len(y)
    if scenario == "random":
        n_forget = int(round(options["fraction"] * n))
        if not 0 < n_forget < n:
            raise ValueError(f"scenarios.random.fraction={options['fraction']} leaves {n_forget} of {n} points")
        forget_idx = np.sort(rng.permutation(n)[:n_forget])
        oracle_colours = None
        definition = f"{n_forget} training points drawn uniformly without replacement"
    elif scenario == "bias":
        if not data.coloured:
            raise ValueError("scenarios.bias needs a coloured dataset: set colour.enabled: true for this dataset")
        colours = data.colours("train")
        n_colours = data.manifest["colour"]["n_colours"]
        follows_pattern = np.flatnonzero(colours == y % n_colours)
        if len(follows_pattern) == 0:
            raise ValueError("scenarios.bias: no training image carries its class colour (bias_strength is 0)")
        _, forget_idx = stratified_split(y[follows_pattern], options["pattern_fraction"], rng)
        forget_idx = np.sort(follows_pattern[forget_idx])
        oracle_colours = colours.copy()
        if options["oracle"] == "decorrelated":
            oracle_colours = colour_mod.random_colours(n, n_colours, rng)
        else:  # replace_forget: Warnecke et al.'s exact oracle, only ΔD re-coloured
            oracle_colours[forget_idx] = colour_mod.random_colours(len(forget_idx), n_colours, rng)
        definition = (
            f"pattern points z_KL: {len(forget_idx)} training images that carry their class colour "
            f"(feature set K = colour, label set L = class), stratified by class; "
            f"oracle colours: {options['oracle']}"
        )
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    retain_idx = np.setdiff1d(np.arange(n), forget_idx)
    description = {
        "scenario": scenario,
        "options": options,
        "data_seed": data_seed,
        "n_train": n,
        "n_forget": int(len(forget_idx)),
        "n_retain": int(len(retain_idx)),
        "forget_class_counts": np.bincount(y[forget_idx], minlength=data.n_classes).tolist(),
        "definition": definition,
        "data_sha256": data.manifest.get("sha256", {}).get("y_train"),
    }
    return ForgetRequest(scenario, forget_idx, retain_idx, oracle_colours, description)


# ---------------------------------------------------------------------------------------------- rule entry points

def prepare_experiment(raw_npz: str, out_npz: str, dataset_cfg: dict, data_seed: int) -> None:
    from .datasets import load_prepared

    raw = load_prepared(raw_npz)
    arrays, manifest = build_experiment(raw, split=dataset_cfg["split"], colour=dataset_cfg["colour"],
                                        data_seed=data_seed)
    manifest["source"] = dataset_cfg["source"]
    ExperimentData(arrays, manifest).save(out_npz)


def prepare_request(data_npz: str, scenario: str, options: dict, data_seed: int, out_npz: str) -> None:
    make_request(scenario, ExperimentData.load(data_npz), options, data_seed).save(out_npz)
