"""Dataset preparation for unlearnbench: fetch, verify, decode, store.

Public API::

    from unlearnbench.datasets import prepare_dataset, load_prepared, DATASETS, DatasetError

See docs/datasets.md for sources, pinned hashes, mirrors and the on-disk format.
"""

from .errors import DatasetError
from .prepare import array_sha256, prepare_dataset
from .registry import DATASETS, ArchiveFile, DatasetSpec
from .storage import load_prepared

__all__ = [
    "DATASETS",
    "ArchiveFile",
    "DatasetError",
    "DatasetSpec",
    "array_sha256",
    "load_prepared",
    "prepare_dataset",
]
