"""The experiment of one configured dataset: splits and colour bias, built once from a prepared dataset.

Everything here is numpy only (no torch), so the data rules start fast.
Layout on disk (`results/{dataset}/data/`), one bundle (unlearnbench.core.io):
  experiment.npz   gray or RGB images for train / val / test, labels, colour index per image, palette
  experiment.json  sizes, class names, colour settings, normalisation statistics, content hashes
Forget requests (what to forget, per scenario) are built from it by unlearnbench.scenarios.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from . import colour as colour_mod
from ..core.io import read_bundle, write_bundle

SPLITS = ("train", "val", "test")
REQUIRED_ARRAYS = tuple(f"{kind}_{split}" for split in SPLITS for kind in ("x", "y"))


class TestSplitAccessError(PermissionError):
    """Code that must never see the test split (the tune stage: docs/tuning.md) tried to read it."""


class _WithoutTest(dict):
    """The arrays of an experiment loaded without its test split: reading a test array (x_test, y_test, c_test,
    f_test, ...) raises TestSplitAccessError instead of a KeyError, whichever way it is asked for."""

    @staticmethod
    def _is_test(key) -> bool:
        return isinstance(key, str) and key.endswith("_test")

    def _refuse(self, key):
        raise TestSplitAccessError(f"{key!r}: this experiment was loaded without its test split (the tune stage "
                                   f"selects knobs on validation data only and never reads test data)")

    def __getitem__(self, key):
        if self._is_test(key):
            self._refuse(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        if self._is_test(key):
            self._refuse(key)
        return super().get(key, default)

    def __contains__(self, key):
        if self._is_test(key):
            self._refuse(key)
        return super().__contains__(key)


def n_taken(fraction: float, n: int, whole: bool = False) -> int:
    """How many of a class's `n` images a stratified split of `fraction` takes: at least one, and (unless `whole`)
    at least one left; ValueError otherwise. The one rule of every split, used for the data and for the sizes
    planned at config time (`planned_sizes`)."""
    n_take = max(1, int(round(fraction * n)))
    if n_take > n or (n_take == n and not whole):
        raise ValueError(f"a class has {n} images: too few to take a {fraction:.0%} split")
    return n_take


def stratified_split(labels: np.ndarray, fraction: float, rng: np.random.Generator,
                     whole: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, taken) with `fraction` of every class taken (at least one per class, and one kept
    unless `whole`)."""
    labels = np.asarray(labels)
    taken = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        try:
            n_take = n_taken(fraction, len(members), whole)
        except ValueError:
            raise ValueError(f"class {c} has {len(members)} images: too few to take a {fraction:.0%} split") from None
        taken.append(members[:n_take])
    taken = np.sort(np.concatenate(taken))
    kept = np.setdiff1d(np.arange(len(labels)), taken)
    return kept, taken


def _stratified_subset(labels: np.ndarray, size: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Indices of a stratified random subset of about `size` items; None (and no draw) when size is None or
    covers everything. A small class may be taken whole (a size just below the total is a valid request)."""
    if size is None or size >= len(labels):
        return None
    return stratified_split(labels, size / len(labels), rng, whole=True)[1]


@dataclass(frozen=True)
class PlannedSizes:
    """Images per class of an experiment's splits, computed from the dataset registry before any data exists."""

    n_classes: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    rgb: bool


def planned_sizes(dataset: str, cfg: dict) -> PlannedSizes:
    """The per-class sizes `build_experiment` will produce for dataset entry `cfg` (schema defaults filled), from
    the registry's class counts and the same split rule (`n_taken`), so a configuration whose splits, scenarios or
    metrics cannot work stops before any job. ConfigError names the key of a split that cannot be made."""
    from .registry import DATASETS
    from ..core.errors import SizeError

    spec = DATASETS[cfg["source"]]
    coarse = cfg.get("labels", "fine") == "coarse"
    counts = spec.coarse_class_counts if coarse else spec.class_counts
    if coarse and cfg.get("superclasses"):  # a declared superclass map: each superclass pools its fine classes
        fine_to_coarse = coarse_map(cfg["superclasses"], len(spec.class_counts["train"]),
                                    f"datasets.{dataset}.superclasses")
        counts = {part: tuple(np.bincount(fine_to_coarse, weights=np.asarray(n, dtype=np.float64)).astype(np.int64))
                  for part, n in spec.class_counts.items()}
    train = np.asarray(counts["train"], dtype=np.int64)
    test = np.asarray(counts.get("test", (0,) * len(train)), dtype=np.int64)
    split = cfg.get("split") or {}
    key = f"datasets.{dataset}.split"

    def taken(sizes, fraction, what, whole=False):
        out = []
        for c, n in enumerate(sizes):
            try:
                out.append(n_taken(fraction, int(n), whole))
            except ValueError:
                raise SizeError(f"{key}.{what}: class {c} of dataset {dataset} would have {int(n)} images, too few "
                                  f"to take a {fraction:.0%} split that leaves one (every split is stratified, at "
                                  f"least one image per class); change {key}.{what}") from None
        return np.asarray(out, dtype=np.int64)

    if not spec.has_official_test:
        test = taken(train, split.get("test_fraction", 0.25), "test_fraction")
        train = train - test
    for name, sizes in (("train_size", train), ("test_size", test)):
        size = split.get(name)
        if size is not None and size < sizes.sum():
            subset = taken(sizes, size / sizes.sum(), name, whole=True)
            if name == "train_size":
                train = subset
            else:
                test = subset
    val = taken(train, split.get("val_fraction", 0.1), "val_fraction")
    return PlannedSizes(n_classes=len(train), train=train - val, val=val, test=test, rgb=len(spec.image_shape) == 3)


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def coarse_map(superclasses: dict, n_fine: int, where: str = "superclasses") -> np.ndarray:
    """Fine class -> superclass index (the declared order) of a declared superclass map {name: [fine classes]},
    which must put each of the `n_fine` fine classes in exactly one superclass (ValueError naming `where`)."""
    mapping = np.full(n_fine, -1, dtype=np.int64)
    for index, (name, members) in enumerate(superclasses.items()):
        for fine in members:
            if not 0 <= int(fine) < n_fine:
                raise ValueError(f"{where}.{name}: fine class {fine} does not exist (classes 0..{n_fine - 1})")
            if mapping[int(fine)] >= 0:
                raise ValueError(f"{where}.{name}: fine class {fine} is already in superclass "
                                 f"{list(superclasses)[mapping[int(fine)]]!r}; every fine class belongs to one "
                                 f"superclass")
            mapping[int(fine)] = index
    missing = np.flatnonzero(mapping < 0)
    if len(missing):
        raise ValueError(f"{where}: fine classes {missing.tolist()} are in no superclass; list every class "
                         f"0..{n_fine - 1} exactly once")
    return mapping


def build_experiment(raw: dict, *, split: dict, colour: dict, data_seed: int,
                     labels: str = "fine", superclasses: dict | None = None) -> tuple[dict, dict]:
    """From a prepared raw dataset to the arrays and manifest of one experiment.

    The validation split is carved from training data; sources without an official test split (digits)
    also get a stratified test split. Both with `data_seed`, so they are the same for every training seed.
    labels="coarse" trains on superclasses: CIFAR-100's 20 built-in ones ("CIFAR-20"), or, for any source, the
    declared map `superclasses` ({name: [fine classes]}, superclass indices in the declared order). The fine labels
    are kept as `f_train` / `f_val` / `f_test` so a request can select one fine class (the sub_class scenario).
    """
    rng = np.random.default_rng([data_seed, 0xDA7A])
    x_train, y_train = np.asarray(raw["x_train"]), np.asarray(raw["y_train"], dtype=np.int64)
    has_test = len(raw.get("y_test", [])) > 0
    x_test = np.asarray(raw["x_test"]) if has_test else None
    y_test = np.asarray(raw["y_test"], dtype=np.int64) if has_test else None
    f_train = f_test = None
    raw_manifest = raw.get("manifest", {})
    class_names = raw_manifest.get("class_names")
    if superclasses and labels != "coarse":
        raise ValueError("superclasses: a superclass map is used only with labels: coarse")
    if labels == "coarse" and superclasses:
        n_fine = len(class_names) if class_names else int(max(y_train.max(), y_test.max() if has_test else 0) + 1)
        mapping = coarse_map(superclasses, n_fine)
        f_train, y_train = y_train, mapping[y_train]
        f_test, y_test = y_test, (mapping[y_test] if has_test else y_test)
        class_names = list(superclasses)
    elif labels == "coarse":
        if "y_train_coarse" not in raw:
            raise ValueError("labels: coarse needs a source with coarse labels (cifar100) or a declared superclass "
                             "map (datasets.<name>.superclasses: {name: [fine classes]}); this source has neither")
        f_train, y_train = y_train, np.asarray(raw["y_train_coarse"], dtype=np.int64)
        f_test, y_test = y_test, np.asarray(raw["y_test_coarse"], dtype=np.int64)
        class_names = raw_manifest.get("coarse_class_names")
    elif labels != "fine":
        raise ValueError(f"labels: expected 'fine' or 'coarse', got {labels!r}")
    if not has_test:
        kept, taken = stratified_split(y_train, split["test_fraction"], rng)
        x_test, y_test = x_train[taken], y_train[taken]
        x_train, y_train = x_train[kept], y_train[kept]
        if f_train is not None:  # a declared superclass map on a source without a test split (digits)
            f_test, f_train = f_train[taken], f_train[kept]
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
    if superclasses and labels == "coarse":
        manifest["superclasses"] = {name: [int(c) for c in members] for name, members in superclasses.items()}
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
    def load(cls, npz_path: str | os.PathLike, *, test: bool = True) -> "ExperimentData":
        """The experiment at `npz_path`; test=False: without its test split (its arrays are not even read from the
        file, and asking for them raises TestSplitAccessError)."""
        if test:
            return cls(*read_bundle(npz_path, what="experiment data", required=REQUIRED_ARRAYS))
        arrays, manifest = read_bundle(npz_path, what="experiment data", skip=_WithoutTest._is_test,
                                       required=tuple(k for k in REQUIRED_ARRAYS if not _WithoutTest._is_test(k)))
        return cls(_WithoutTest(arrays), manifest)

    def save(self, npz_path: str | os.PathLike, json_path: str | os.PathLike | None = None) -> None:
        """Arrays to `npz_path`, manifest to `json_path` (default: the .json beside it, where `load` reads it)."""
        write_bundle(npz_path, self.arrays, self.manifest, json_path)

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


# ---------------------------------------------------------------------------------------------- rule entry points

def prepare_experiment(*, source: str, experiment: str, manifest: str, dataset: dict, data_seed: int) -> None:
    """Rule prepare_experiment: splits and colours of one configured dataset."""
    from . import load_prepared

    raw = load_prepared(source)
    arrays, meta = build_experiment(raw, split=dataset["split"], colour=dataset["colour"],
                                    data_seed=data_seed, labels=dataset.get("labels", "fine"),
                                    superclasses=dataset.get("superclasses"))
    meta["source"] = dataset["source"]
    ExperimentData(arrays, meta).save(experiment, manifest)
