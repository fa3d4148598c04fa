"""Atomic writes and the one on-disk bundle format (an .npz of arrays + a .json of metadata).

An output either exists complete or not at all: every writer writes a temporary file with a name unique to the
writing process in the target's folder and renames it into place. Files get the permissions of the user's umask
(as `open()` would give them), so collaborators on a shared cluster can read results.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import InputFileError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to `path` (unique to this writer); rename it to `path` only if the block
    succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_save_npz(path: str | os.PathLike, arrays: dict) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------------------------------------- bundles

def sidecar(npz_path: str | os.PathLike) -> Path:
    """The metadata file of a bundle: the .npz path with a .json suffix."""
    return Path(npz_path).with_suffix(".json")


def write_bundle(npz_path: str | os.PathLike, arrays: dict, meta: dict,
                 json_path: str | os.PathLike | None = None) -> None:
    """Write a bundle: arrays to `npz_path`, metadata to `json_path` (default: the sidecar). The arrays are
    renamed into place first, so a complete .json always describes a complete .npz."""
    atomic_save_npz(npz_path, arrays)
    atomic_write_json(sidecar(npz_path) if json_path is None else json_path, meta)


def read_json(path: str | os.PathLike, what: str = "metadata") -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputFileError(f"{path}: {what} file not found; {FIX}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"{path}: not a readable {what} file ({type(exc).__name__}: {exc}); {FIX}") from exc


FIX = "delete it and rerun the workflow so the step that writes it runs again"


def read_npz(path: str | os.PathLike, what: str = "array bundle", required=(), skip=None) -> dict[str, np.ndarray]:
    """Every array of an .npz (but those whose name `skip(name)` is true), loaded into memory (never unpickling:
    allow_pickle=False). A missing, truncated or foreign file, or one without the `required` arrays, is an
    InputFileError naming it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if skip is None or not skip(k)}
    except FileNotFoundError as exc:
        raise InputFileError(f"{path}: {what} not found; {FIX}") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputFileError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc}); {FIX}") from exc
    missing = [k for k in required if k not in arrays]
    if missing:
        raise InputFileError(f"{path}: not a {what}: arrays {missing} are missing (it holds {sorted(arrays)}); {FIX}")
    return arrays


def read_bundle(npz_path: str | os.PathLike, json_path: str | os.PathLike | None = None,
                what: str = "bundle", required=(), skip=None) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, metadata) of a bundle written by write_bundle (InputFileError naming the file if it is missing,
    unreadable, or lacks the `required` arrays; arrays named `skip(name)` are not read)."""
    arrays = read_npz(npz_path, what, required, skip)
    meta_path = sidecar(npz_path) if json_path is None else json_path
    meta = read_json(meta_path, f"{what} metadata")
    if not isinstance(meta, dict):
        raise InputFileError(f"{meta_path}: not a {what} metadata file (a JSON object was expected); {FIX}")
    return arrays, meta


def read_table(path: str | os.PathLike, what: str = "table"):
    """A CSV table written by the report steps, as a pandas DataFrame (InputFileError naming the file if it is
    missing or unreadable)."""
    import pandas as pd

    path = Path(path)
    try:
        return pd.read_csv(path)
    except FileNotFoundError as exc:
        raise InputFileError(f"{path}: {what} not found; {FIX}") from exc
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc}); {FIX}") from exc
