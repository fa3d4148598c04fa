"""gzip IDX files (MNIST / Fashion-MNIST), decoded by torchvision.

torchvision decompresses (``datasets.utils.extract_archive``) and decodes
(``datasets.mnist.read_image_file`` / ``read_label_file``, which require
unsigned bytes and 3 resp. 1 dimensions, i.e. magic number 2051 resp. 2049).
This module adds what torchvision lacks: the expected dimensions are checked,
and every failure becomes a DatasetError naming the file.  When torchvision
rejects a file, its big-endian IDX header (magic number, then one uint32 per
dimension) is read only to say what is wrong with it.  torch and torchvision
are imported inside the functions, never when this package is imported.
"""

from __future__ import annotations

import tempfile
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetError, describe_problem

IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions

_REPLACE = "replace the file with the upstream copy"


def _why_rejected(path: Path, raw: Path, expected_magic: int, error: Exception) -> str:
    """Describe, from the decompressed file's header, why torchvision rejected it."""
    data = raw.read_bytes()
    kind = "images" if expected_magic == IDX_IMAGES_MAGIC else "labels"
    tv_error = f"torchvision.datasets.mnist.read_{kind[:-1]}_file raised {type(error).__name__}: {error}"
    if len(data) < 4:
        return describe_problem(path, f"an IDX file starting with magic number {expected_magic}",
                                f"only {len(data)} decompressed bytes ({tv_error})", _REPLACE)
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        return describe_problem(
            path, f"IDX magic number {expected_magic} (0x{expected_magic:08x})",
            f"{magic} (0x{magic:08x}); the file is not the expected IDX {kind} file ({tv_error})",
            "check that the file name matches its content and " + _REPLACE)
    header_length = 4 + 4 * (magic & 0xFF)
    if len(data) < header_length:
        return describe_problem(path, f"a {header_length}-byte IDX header",
                                f"{len(data)} bytes in total ({tv_error})", _REPLACE)
    dims = tuple(int(d) for d in np.frombuffer(data[:header_length], dtype=">u4")[1:])
    if len(data) - header_length != int(np.prod(dims)):
        return describe_problem(
            path, f"{int(np.prod(dims))} data bytes after the header (dimensions {dims})",
            f"{len(data) - header_length} bytes ({tv_error})",
            "the file is truncated or padded; " + _REPLACE)
    return describe_problem(path, f"an IDX {kind} file torchvision can decode", tv_error, _REPLACE)


def decode_idx_gz(path: Path, expected_magic: int, expected_dims: tuple[int, ...]) -> np.ndarray:
    """Return the array in a gzip IDX file: uint8 images, or int64 labels for magic 2049.

    ``expected_dims`` is the full expected shape, e.g. ``(60000, 28, 28)``.
    """
    from torchvision.datasets.mnist import read_image_file, read_label_file
    from torchvision.datasets.utils import extract_archive

    reader = read_image_file if expected_magic == IDX_IMAGES_MAGIC else read_label_file
    # The mirror may be read-only (Debian's /usr/share/datasets/...), so the
    # file is decompressed into a private folder that is always removed.
    with tempfile.TemporaryDirectory(prefix="unlearnbench-idx-") as workdir:
        try:
            raw = Path(extract_archive(str(path), workdir))
        # EOFError: truncated stream; BadGzipFile (an OSError): bad header or
        # CRC / length trailer mismatch; zlib.error: damaged deflate data.
        except (EOFError, OSError, zlib.error) as error:
            raise DatasetError(describe_problem(
                path, "a complete gzip file",
                f"a truncated or corrupt gzip stream ({type(error).__name__}: {error})",
                "delete the file and download it again, or point the mirror at an intact copy",
            )) from error
        try:
            array = reader(str(raw)).numpy()
        except Exception as error:  # torchvision asserts, raises TypeError, ValueError, RuntimeError...
            raise DatasetError(_why_rejected(path, raw, expected_magic, error)) from error
    if array.shape != tuple(expected_dims):
        raise DatasetError(describe_problem(
            path, f"IDX dimensions {tuple(expected_dims)}", f"{array.shape}",
            "the file belongs to a different dataset or split; " + _REPLACE))
    return array
