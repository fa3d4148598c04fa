"""Atomic writing and memory-mapped reading of prepared datasets.

A prepared dataset is ``out_dir/data.npz`` (an *uncompressed* npz holding every
array plus the manifest as JSON bytes under ``manifest_json``) and a
human-readable copy of the manifest in ``out_dir/manifest.json``.

``np.load(..., mmap_mode="r")`` silently ignores ``mmap_mode`` for .npz files,
so :func:`load_prepared` maps each stored (uncompressed) zip member itself:
the .npy bytes of a stored member are contiguous in the file, so a
``np.memmap`` at the member's data offset is exactly the array.
"""

from __future__ import annotations

import json
import os
import struct
import uuid
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import DatasetError, describe_problem

DATA_FILENAME = "data.npz"
MANIFEST_FILENAME = "manifest.json"
MANIFEST_ARRAY_KEY = "manifest_json"

# Zip local file header: signature, versions/flags/sizes..., name length, extra length.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"


def _write_then_fsync(path: Path, write) -> None:
    with open(path, "wb") as stream:
        write(stream)
        stream.flush()
        os.fsync(stream.fileno())


def write_prepared(out_dir: Path, arrays: Mapping[str, np.ndarray], manifest: dict[str, Any]) -> Path:
    """Write data.npz and manifest.json so that readers see all or nothing.

    Both files are written under temporary names in ``out_dir`` and moved into
    place with ``os.replace``.  The manifest is embedded in data.npz as well,
    so data.npz is self-describing even if a crash lands between the two
    renames; data.npz is renamed last because it is the pipeline's output.
    """
    created_out_dir = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    data_temp = out_dir / f".{DATA_FILENAME}.{token}.tmp"
    manifest_temp = out_dir / f".{MANIFEST_FILENAME}.{token}.tmp"
    manifest_text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    manifest_bytes = np.frombuffer(manifest_text.encode("utf-8"), dtype=np.uint8)
    try:
        # np.savez (not savez_compressed) stores members uncompressed, which is
        # what makes memory mapping possible; passing a file object keeps
        # numpy from appending ".npz" to the temporary name.
        _write_then_fsync(data_temp, lambda s: np.savez(s, **arrays, **{MANIFEST_ARRAY_KEY: manifest_bytes}))
        _write_then_fsync(manifest_temp, lambda s: s.write(manifest_text.encode("utf-8")))
        os.replace(manifest_temp, out_dir / MANIFEST_FILENAME)
        os.replace(data_temp, out_dir / DATA_FILENAME)
    except BaseException:
        data_temp.unlink(missing_ok=True)
        manifest_temp.unlink(missing_ok=True)
        if created_out_dir and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return out_dir / DATA_FILENAME


def _bad_prepared(path: Path, expected: str, found: str) -> DatasetError:
    return DatasetError(describe_problem(
        path, expected, found,
        "delete the output folder and run prepare_dataset (or the Snakemake prepare rule) again",
    ))


def _map_member(npz_path: Path, stream, info: zipfile.ZipInfo) -> np.ndarray:
    """Return a read-only view of one .npy member without copying it into memory."""
    if info.compress_type != zipfile.ZIP_STORED:
        # Compressed members cannot be mapped; load them the ordinary way.
        with zipfile.ZipFile(npz_path) as archive, archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    stream.seek(info.header_offset)
    header = stream.read(_LOCAL_HEADER.size)
    fields = _LOCAL_HEADER.unpack(header)
    if fields[0] != _LOCAL_HEADER_SIGNATURE:
        raise _bad_prepared(npz_path, f"a zip local header for {info.filename}", "corrupt bytes")
    name_length, extra_length = fields[-2], fields[-1]
    npy_offset = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    stream.seek(npy_offset)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
    if dtype.hasobject:
        raise _bad_prepared(npz_path, f"numeric array {info.filename}", "an object array")
    if int(np.prod(shape)) == 0:
        return np.empty(shape, dtype=dtype)  # mmap cannot map zero bytes
    return np.memmap(npz_path, dtype=dtype, mode="r", offset=stream.tell(), shape=shape,
                     order="F" if fortran_order else "C")


def load_prepared(npz_path: str | os.PathLike) -> dict[str, Any]:
    """Load a prepared dataset: arrays (memory-mapped, read-only) plus ``"manifest"``."""
    npz_path = Path(npz_path)
    if not npz_path.is_file():
        raise _bad_prepared(npz_path, "a prepared dataset file", "no such file")
    try:
        with zipfile.ZipFile(npz_path) as archive:
            members = [info for info in archive.infolist() if info.filename.endswith(".npy")]
        result: dict[str, Any] = {}
        with open(npz_path, "rb") as stream:
            for info in members:
                result[info.filename[: -len(".npy")]] = _map_member(npz_path, stream, info)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, struct.error) as error:
        raise _bad_prepared(npz_path, "an uncompressed .npz written by prepare_dataset",
                            f"an unreadable file ({type(error).__name__}: {error})") from error
    if MANIFEST_ARRAY_KEY not in result:
        raise _bad_prepared(npz_path, f"an embedded {MANIFEST_ARRAY_KEY!r} member",
                            f"members {sorted(result)}")
    result["manifest"] = json.loads(bytes(result.pop(MANIFEST_ARRAY_KEY)).decode("utf-8"))
    missing = [name for name in result["manifest"].get("shapes", {}) if name not in result]
    if missing:
        raise _bad_prepared(npz_path, f"arrays {sorted(result['manifest']['shapes'])}",
                            f"missing {missing}")
    return result
