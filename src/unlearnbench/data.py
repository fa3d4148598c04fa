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


def _stratified_subset(labels: np.ndarray, size: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Indices of a stratified random subset of about `size` items; None (and no draw) when size is None or
    covers everything."""
    if size is None or size >= len(labels):
        return None
    return stratified_split(labels, size / len(labels), rng)[1]


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def build_experiment(raw: dict, *, split: dict, colour: dict, data_seed: int,
                     labels: str = "fine") -> tuple[dict, dict]:
    """From a prepared raw dataset to the arrays and manifest of one experiment.

    The validation split is carved from training data; sources without an official test split (digits)
    also get a stratified test split. Both with `data_seed`, so they are the same for every training seed.
    labels="coarse" (CIFAR-100 only) trains on the 20 superclasses ("CIFAR-20"); the fine labels are kept
    as `f_train` / `f_val` / `f_test` so a request can select one fine class (the sub_class scenario).
    """
    rng = np.random.default_rng([data_seed, 0xDA7A])
    x_train, y_train = np.asarray(raw["x_train"]), np.asarray(raw["y_train"], dtype=np.int64)
    has_test = len(raw.get("y_test", [])) > 0
    x_test = np.asarray(raw["x_test"]) if has_test else None
    y_test = np.asarray(raw["y_test"], dtype=np.int64) if has_test else None
    f_train = f_test = None
    raw_manifest = raw.get("manifest", {})
    class_names = raw_manifest.get("class_names")
    if labels == "coarse":
        if "y_train_coarse" not in raw:
            raise ValueError("labels: coarse needs a source with coarse labels (cifar100); this source has none")
        f_train, y_train = y_train, np.asarray(raw["y_train_coarse"], dtype=np.int64)
        f_test, y_test = y_test, np.asarray(raw["y_test_coarse"], dtype=np.int64)
        class_names = raw_manifest.get("coarse_class_names")
    elif labels != "fine":
        raise ValueError(f"labels: expected 'fine' or 'coarse', got {labels!r}")
    if not has_test:
        kept, taken = stratified_split(y_train, split["test_fraction"], rng)
        x_test, y_test = x_train[taken], y_train[taken]
        x_train, y_train = x_train[kept], y_train[kept]
    # CPU-scale runs: stratified subsets, drawn only when asked for (so other configs keep their splits)
    chosen = _stratified_subset(y_train, split.get("train_size"), rng)
    if chosen is not None:
        x_train, y_train = x_train[chosen], y_train[chosen]
        f_train = None if f_train is None else f_train[chosen]
    chosen = _stratified_subset(y_test, split.get("test_size"), rng)
    if chosen is not None:
        x_test, y_test = x_test[chosen], y_test[chosen]
        f_test = None if f_test is None else f_test[chosen]
    kept, taken = stratified_split(y_train, split["val_fraction"], rng)
    arrays = {
        "x_train": x_train[kept], "y_train": y_train[kept],
        "x_val": x_train[taken], "y_val": y_train[taken],
        "x_test": x_test, "y_test": y_test,
    }
    if f_train is not None:
        arrays.update({"f_train": f_train[kept], "f_val": f_train[taken], "f_test": f_test})
    n_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max()) + 1)
    manifest = {
        "n_classes": n_classes,
        "class_names": list(class_names or [str(c) for c in range(n_classes)]),
        "labels": labels,
        "data_seed": data_seed,
        "colour": None,
    }
    if f_train is not None:
        manifest["fine_class_names"] = list(raw_manifest.get("class_names") or
                                            [str(c) for c in range(int(f_train.max()) + 1)])
    if colour.get("enabled", False):
        mode = colour.get("mode", "background")
        if x_train.ndim != 3 and mode not in colour_mod.PATTERN_MODES:
            raise ValueError(
                f"colour.mode: {mode!r} recolours grayscale strokes; this source is RGB: use colour.mode: patch "
                "or border (a class-coloured patch/border painted on the image), or set colour.enabled: false"
            )
        palette = colour_mod.make_palette(colour["palette"], n_classes)
        arrays["palette"] = palette
        arrays["c_train"] = colour_mod.class_colours(arrays["y_train"], colour["bias_strength"], len(palette), rng)
        arrays["c_val"] = colour_mod.class_colours(arrays["y_val"], colour["bias_strength"], len(palette), rng)
        arrays["c_test"] = colour_mod.random_colours(len(arrays["y_test"]), len(palette), rng)
        manifest["colour"] = {
            "mode": colour["mode"], "bias_strength": colour["bias_strength"], "n_colours": len(palette),
        }
        if mode in colour_mod.PATTERN_MODES:
            size = colour.get("patch_size")
            manifest["colour"]["patch_size"] = int(colour_mod.DEFAULT_PATCH_SIZE[mode] if size is None else size)
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
        return colour_mod.render(x[idx], colours, self.arrays["palette"], self.manifest["colour"]["mode"],
                                 self.manifest["colour"].get("patch_size"))


# ---------------------------------------------------------------------------------------------- requests

@dataclass
class ForgetRequest:
    """What to forget and what the retrain oracle trains on, as indices into the train split.

    forget_idx:     ΔD, the training points whose information is to be removed
    retain_idx:     the other training points
    oracle_colours: (bias only) colours of every training image in the oracle's training set D \\ ΔD;
                    the forget points' counterfactuals z̃ are the forget images in these colours.
    test_forget_idx / test_retain_idx: (class scenarios full_class, sub_class) indices into the test split of
                    the forgotten (sub-)class and of every other test image: the forget-class and
                    retain-class evaluation sets; None for the other scenarios.
    """

    scenario: str
    forget_idx: np.ndarray
    retain_idx: np.ndarray
    oracle_colours: np.ndarray | None
    description: dict
    test_forget_idx: np.ndarray | None = None
    test_retain_idx: np.ndarray | None = None

    @classmethod
    def load(cls, npz_path: str | os.PathLike) -> "ForgetRequest":
        npz_path = Path(npz_path)
        with np.load(npz_path) as z:
            oracle_colours = z["oracle_colours"] if "oracle_colours" in z.files else None
            forget_idx, retain_idx = z["forget_idx"], z["retain_idx"]
            test_forget_idx = z["test_forget_idx"] if "test_forget_idx" in z.files else None
            test_retain_idx = z["test_retain_idx"] if "test_retain_idx" in z.files else None
        description = json.loads(npz_path.with_suffix(".json").read_text())
        return cls(description["scenario"], forget_idx, retain_idx, oracle_colours, description,
                   test_forget_idx, test_retain_idx)

    def save(self, npz_path: str | os.PathLike) -> None:
        npz_path = Path(npz_path)
        arrays = {"forget_idx": self.forget_idx, "retain_idx": self.retain_idx}
        if self.oracle_colours is not None:
            arrays["oracle_colours"] = self.oracle_colours
        if self.test_forget_idx is not None:
            arrays["test_forget_idx"] = self.test_forget_idx
            arrays["test_retain_idx"] = self.test_retain_idx
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

    def test_forget_set(self, data: ExperimentData) -> tuple[np.ndarray, np.ndarray] | None:
        """(class scenarios) test images of the forgotten (sub-)class; None for the other scenarios."""
        if self.test_forget_idx is None:
            return None
        return data.images("test", self.test_forget_idx), data.labels("test")[self.test_forget_idx]

    def test_retain_set(self, data: ExperimentData) -> tuple[np.ndarray, np.ndarray] | None:
        """(class scenarios) every other test image: the retain-class test set; None for the other scenarios."""
        if self.test_retain_idx is None:
            return None
        return data.images("test", self.test_retain_idx), data.labels("test")[self.test_retain_idx]


def make_request(scenario: str, data: ExperimentData, options: dict, data_seed: int) -> ForgetRequest:
    """Build the forget request of a scenario. The same request serves every seed (see docs/methods.md)."""
    rng = np.random.default_rng([data_seed, 0xF0, sum(map(ord, scenario))])
    y = data.labels("train")
    n = len(y)
    test_forget_idx = test_retain_idx = None
    extra = {}
    if scenario == "full_class":
        c = int(options.get("forget_class", 0))
        if not 0 <= c < data.n_classes:
            raise ValueError(f"scenarios.full_class.forget_class={c}: this dataset has classes 0..{data.n_classes - 1}")
        forget_idx = np.flatnonzero(y == c)
        if len(forget_idx) == 0:
            raise ValueError(f"scenarios.full_class.forget_class={c}: no training image has this class")
        test_forget_idx = np.flatnonzero(data.labels("test") == c)
        oracle_colours = None
        name = data.manifest["class_names"][c] if c < len(data.manifest.get("class_names", [])) else str(c)
        extra = {"forget_class": c, "forget_class_name": name}
        definition = f"every training image of class {c} ({name}): {len(forget_idx)} images"
    elif scenario == "sub_class":
        if "f_train" not in data.arrays:
            raise ValueError("scenarios.sub_class needs fine labels next to the training labels: set "
                             "labels: coarse on a cifar100 dataset (train on the 20 superclasses, forget one fine class)")
        fine = int(options.get("fine_class", 69))
        f_train, f_test = data.arrays["f_train"], data.arrays["f_test"]
        forget_idx = np.flatnonzero(f_train == fine)
        if len(forget_idx) == 0:
            raise ValueError(f"scenarios.sub_class.fine_class={fine}: no training image has this fine class")
        coarse = np.unique(y[forget_idx])
        if len(coarse) != 1:
            raise ValueError(f"scenarios.sub_class.fine_class={fine}: spans superclasses {coarse.tolist()}")
        test_forget_idx = np.flatnonzero(f_test == fine)
        oracle_colours = None
        fine_names = data.manifest.get("fine_class_names", [])
        fine_name = fine_names[fine] if fine < len(fine_names) else str(fine)
        coarse_name = data.manifest["class_names"][int(coarse[0])]
        extra = {"fine_class": fine, "fine_class_name": fine_name, "coarse_class": int(coarse[0]),
                 "coarse_class_name": coarse_name}
        definition = (f"every training image of fine class {fine} ({fine_name}) inside superclass {int(coarse[0])} "
                      f"({coarse_name}), labelled with the superclass: {len(forget_idx)} images")
    elif scenario in ("random", "random_n"):
        if scenario == "random_n":
            n_forget = int(options.get("n", 100))
            problem = f"scenarios.random_n.n={n_forget}: must be in 1..{n - 1} for {n} training points"
        else:
            n_forget = int(round(options["fraction"] * n))
            problem = f"scenarios.random.fraction={options['fraction']} leaves {n_forget} of {n} points"
        if not 0 < n_forget < n:
            raise ValueError(problem)
        forget_idx = np.sort(rng.permutation(n)[:n_forget])
        oracle_colours = None
        exactly = "exactly " if scenario == "random_n" else ""
        definition = f"{exactly}{n_forget} training points drawn uniformly without replacement"
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
        **extra,
    }
    if test_forget_idx is not None:
        test_retain_idx = np.setdiff1d(np.arange(len(data.labels("test"))), test_forget_idx)
        description["n_test_forget"] = int(len(test_forget_idx))
        description["n_test_retain"] = int(len(test_retain_idx))
    return ForgetRequest(scenario, forget_idx, retain_idx, oracle_colours, description,
                         test_forget_idx, test_retain_idx)


# ---------------------------------------------------------------------------------------------- rule entry points

def prepare_experiment(raw_npz: str, out_npz: str, dataset_cfg: dict, data_seed: int) -> None:
    from .datasets import load_prepared

    raw = load_prepared(raw_npz)
    arrays, manifest = build_experiment(raw, split=dataset_cfg["split"], colour=dataset_cfg["colour"],
                                        data_seed=data_seed, labels=dataset_cfg.get("labels", "fine"))
    manifest["source"] = dataset_cfg["source"]
    ExperimentData(arrays, manifest).save(out_npz)


def prepare_request(data_npz: str, scenario: str, options: dict, data_seed: int, out_npz: str) -> None:
    make_request(scenario, ExperimentData.load(data_npz), options, data_seed).save(out_npz)
