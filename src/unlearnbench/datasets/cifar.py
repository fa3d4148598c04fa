"""Decoder for the CIFAR-10 / CIFAR-100 "python version" tar.gz archives.

Download and MD5 go through torchvision (fetch.py); decoding deliberately does
not.  torchvision's CIFAR classes ``pickle.load`` the batches, which runs any
code an untrusted file contains, and its ``extract_archive`` calls
``tarfile.extractall`` without a filter.  An archive whose MD5 does not match
may be decoded before its content hash is checked, so the wanted members are
read into memory here (nothing is written to disk) and unpickled by a
restricted unpickler that only allows the few globals numpy arrays need.  The
pickles were written by Python 2, so they are loaded with ``encoding="bytes"``
(keys and strings come back as bytes, as with the CIFAR web page's own loader).
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError, describe_problem

CIFAR_ROW_BYTES = 3 * 32 * 32

_CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN_MEMBERS = tuple(f"{_CIFAR10_DIR}/data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_MEMBER = f"{_CIFAR10_DIR}/test_batch"
CIFAR10_META_MEMBER = f"{_CIFAR10_DIR}/batches.meta"

_CIFAR100_DIR = "cifar-100-python"
CIFAR100_TRAIN_MEMBER = f"{_CIFAR100_DIR}/train"
CIFAR100_TEST_MEMBER = f"{_CIFAR100_DIR}/test"
CIFAR100_META_MEMBER = f"{_CIFAR100_DIR}/meta"

# (module, name) pairs a pickled numpy array may reference.  Python 2 / numpy 1
# pickles use numpy.core; numpy 2 writes numpy._core; protocol 2 pickles made
# by Python 3 encode bytes through _codecs.encode.
_ALLOWED_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        # Map numpy 1 paths to numpy 2's private module so loading does not
        # trigger numpy.core's deprecation shim; fall back for numpy 1.
        if module.startswith("numpy.core."):
            try:
                return super().find_class(module.replace("numpy.core.", "numpy._core.", 1), name)
            except (ImportError, AttributeError):
                pass
        return super().find_class(module, name)


def _read_members(archive: Path, wanted: tuple[str, ...]) -> dict[str, bytes]:
    """Read the named regular-file members of a tar.gz into memory (nothing is extracted to disk)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None  # isfile() guarantees a stream
                    found[member.name] = extracted.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DatasetError(describe_problem(
            archive, "a complete tar.gz archive",
            f"a truncated or corrupt archive ({type(error).__name__}: {error})",
            "delete the file and download it again, or point the mirror at an intact copy",
        )) from error
    missing = [name for name in wanted if name not in found]
    if missing:
        raise DatasetError(describe_problem(
            archive, f"archive members {list(wanted)}", f"no member(s) {missing}",
            "the archive is not the upstream CIFAR python archive; replace it with the upstream copy",
        ))
    return found


def _unpickle(archive: Path, member: str, payload: bytes) -> dict[str, Any]:
    where = f"{archive} (member {member})"
    try:
        loaded = _NumpyOnlyUnpickler(io.BytesIO(payload), encoding="bytes").load()
    except Exception as error:  # a corrupt pickle can raise almost anything
        raise DatasetError(describe_problem(
            where, "a pickled dict of numpy arrays",
            f"an unreadable pickle ({type(error).__name__}: {error})",
            "replace the archive with the upstream copy",
        )) from error
    if not isinstance(loaded, dict):
        raise DatasetError(describe_problem(
            where, "a pickled dict", f"a pickled {type(loaded).__name__}",
            "replace the archive with the upstream copy",
        ))
    # Normalise bytes keys (Python 2 str) to str so lookups read naturally.
    return {key.decode("latin1") if isinstance(key, bytes) else key: value
            for key, value in loaded.items()}


def _require_key(batch: dict[str, Any], key: str, where: str) -> Any:
    if key not in batch:
        raise DatasetError(describe_problem(
            where, f"key {key!r}", f"keys {sorted(batch)}",
            "replace the archive with the upstream copy",
        ))
    return batch[key]


def _images_from_rows(rows: Any, where: str) -> np.ndarray:
    """Convert (N, 3072) CHW rows to (N, 32, 32, 3) HWC uint8 images."""
    rows = np.asarray(rows)
    if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != CIFAR_ROW_BYTES:
        raise DatasetError(describe_problem(
            where, f"'data' as a uint8 array of shape (N, {CIFAR_ROW_BYTES})",
            f"dtype {rows.dtype}, shape {rows.shape}",
            "replace the archive with the upstream copy",
        ))
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _labels(values: Any, count: int, key: str, where: str) -> np.ndarray:
    labels = np.asarray(values)
    if labels.ndim != 1 or labels.shape[0] != count or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(describe_problem(
            where, f"{key!r} as {count} integer labels (one per image)",
            f"dtype {labels.dtype}, shape {labels.shape}",
            "replace the archive with the upstream copy",
        ))
    return labels.astype("<i8")


def _names(values: Any, key: str, where: str) -> tuple[str, ...]:
    try:
        return tuple(v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values)
    except (TypeError, UnicodeDecodeError) as error:
        raise DatasetError(describe_problem(
            where, f"{key!r} as a list of names", f"{type(values).__name__} ({error})",
            "replace the archive with the upstream copy",
        )) from error


def _check_count(images: np.ndarray, expected: int, split: str, archive: Path) -> None:
    if images.shape[0] != expected:
        raise DatasetError(describe_problem(
            archive, f"{expected} {split} images", f"{images.shape[0]}",
            "the archive is incomplete or from another dataset; replace it with the upstream copy",
        ))


def decode_cifar10(archive: Path, split_sizes: dict[str, int]) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    """Return (arrays, label names) from cifar-10-python.tar.gz."""
    members = _read_members(archive, CIFAR10_TRAIN_MEMBERS + (CIFAR10_TEST_MEMBER, CIFAR10_META_MEMBER))
    arrays: dict[str, np.ndarray] = {}
    for split, member_names in (("train", CIFAR10_TRAIN_MEMBERS), ("test", (CIFAR10_TEST_MEMBER,))):
        image_parts, label_parts = [], []
        for member in member_names:
            where = f"{archive} (member {member})"
            batch = _unpickle(archive, member, members[member])
            images = _images_from_rows(_require_key(batch, "data", where), where)
            image_parts.append(images)
            label_parts.append(_labels(_require_key(batch, "labels", where), len(images), "labels", where))
        arrays[f"x_{split}"] = np.concatenate(image_parts)
        arrays[f"y_{split}"] = np.concatenate(label_parts)
        _check_count(arrays[f"x_{split}"], split_sizes[split], split, archive)
    meta_where = f"{archive} (member {CIFAR10_META_MEMBER})"
    meta = _unpickle(archive, CIFAR10_META_MEMBER, members[CIFAR10_META_MEMBER])
    names = _names(_require_key(meta, "label_names", meta_where), "label_names", meta_where)
    return arrays, {"class_names": names}


def decode_cifar100(archive: Path, split_sizes: dict[str, int]) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    """Return (arrays incl. coarse labels, fine/coarse label names) from cifar-100-python.tar.gz."""
    members = _read_members(archive, (CIFAR100_TRAIN_MEMBER, CIFAR100_TEST_MEMBER, CIFAR100_META_MEMBER))
    arrays: dict[str, np.ndarray] = {}
    for split, member in (("train", CIFAR100_TRAIN_MEMBER), ("test", CIFAR100_TEST_MEMBER)):
        where = f"{archive} (member {member})"
        batch = _unpickle(archive, member, members[member])
        images = _images_from_rows(_require_key(batch, "data", where), where)
        _check_count(images, split_sizes[split], split, archive)
        arrays[f"x_{split}"] = images
        arrays[f"y_{split}"] = _labels(_require_key(batch, "fine_labels", where), len(images), "fine_labels", where)
        arrays[f"y_{split}_coarse"] = _labels(
            _require_key(batch, "coarse_labels", where), len(images), "coarse_labels", where)
    meta_where = f"{archive} (member {CIFAR100_META_MEMBER})"
    meta = _unpickle(archive, CIFAR100_META_MEMBER, members[CIFAR100_META_MEMBER])
    return arrays, {
        "class_names": _names(_require_key(meta, "fine_label_names", meta_where), "fine_label_names", meta_where),
        "coarse_class_names": _names(
            _require_key(meta, "coarse_label_names", meta_where), "coarse_label_names", meta_where),
    }
