"""Decoder for gzip-compressed IDX files (the MNIST / Fashion-MNIST format).

IDX layout (http://yann.lecun.com/exdb/mnist/): a big-endian 32-bit magic
number whose third byte is the element type (0x08 = unsigned byte) and whose
fourth byte is the number of dimensions, then one big-endian uint32 per
dimension, then the elements in C order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetError, describe_problem

IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions

_UNSIGNED_BYTE_TYPE_CODE = 0x08


def read_gzip_bytes(path: Path) -> bytes:
    """Decompress a whole gzip file, turning every corruption into a DatasetError."""
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    # EOFError: truncated stream; BadGzipFile (an OSError): bad header or CRC /
    # length trailer mismatch; zlib.error: damaged deflate data.
    except (EOFError, OSError, zlib.error) as error:
        raise DatasetError(describe_problem(
            path, "a complete gzip file",
            f"a truncated or corrupt gzip stream ({type(error).__name__}: {error})",
            "delete the file and download it again, or point the mirror at an intact copy",
        )) from error


def decode_idx_gz(path: Path, expected_magic: int, expected_dims: tuple[int, ...]) -> np.ndarray:
    """Return the uint8 array stored in a gzip IDX file after checking its header.

    ``expected_dims`` is the full expected shape, e.g. ``(60000, 28, 28)``.
    """
    raw = read_gzip_bytes(path)
    if len(raw) < 4:
        raise DatasetError(describe_problem(
            path, f"an IDX file starting with magic number {expected_magic}",
            f"only {len(raw)} decompressed bytes",
            "replace the file with the upstream copy",
        ))
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DatasetError(describe_problem(
            path, f"IDX magic number {expected_magic} (0x{expected_magic:08x})",
            f"{magic} (0x{magic:08x}); the file is not the expected IDX "
            f"{'images' if expected_magic == IDX_IMAGES_MAGIC else 'labels'} file",
            "check that the file name matches its content and replace it with the upstream copy",
        ))
    # The magic number already fixes type and rank; keep the decomposition
    # explicit so a future expected_magic with another type fails loudly.
    if (magic >> 8) & 0xFF != _UNSIGNED_BYTE_TYPE_CODE:
        raise ValueError(f"only unsigned-byte IDX files are supported, got magic {magic:#x}")
    ndim = magic & 0xFF
    header_length = 4 + 4 * ndim
    if len(raw) < header_length:
        raise DatasetError(describe_problem(
            path, f"a {header_length}-byte IDX header", f"{len(raw)} bytes in total",
            "replace the file with the upstream copy",
        ))
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if dims != tuple(expected_dims):
        raise DatasetError(describe_problem(
            path, f"IDX dimensions {tuple(expected_dims)}", f"{dims}",
            "the file belongs to a different dataset or split; replace it with the upstream copy",
        ))
    payload_length = len(raw) - header_length
    expected_length = int(np.prod(dims))
    if payload_length != expected_length:
        raise DatasetError(describe_problem(
            path, f"{expected_length} data bytes after the header (dimensions {dims})",
            f"{payload_length} bytes",
            "the file is truncated or padded; replace it with the upstream copy",
        ))
    return np.frombuffer(raw, dtype=np.uint8, offset=header_length).reshape(dims)
