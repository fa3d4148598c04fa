"""scikit-learn's 8x8 digits, rescaled to the uint8 convention of the other datasets."""

from __future__ import annotations

import numpy as np

from .errors import DatasetError, describe_problem

DIGITS_MAX_VALUE = 16  # load_digits pixels are integer counts 0..16


def scale_digits_to_uint8(images: np.ndarray) -> np.ndarray:
    """Map 0..16 to 0..255 with round(v * 255 / 16), rounding halves up (8 -> 128)."""
    return np.floor(images * (255.0 / DIGITS_MAX_VALUE) + 0.5).astype(np.uint8)


def load_digits_arrays() -> tuple[dict[str, np.ndarray], str]:
    """Return (arrays, source description); all 1,797 images go to the train split."""
    try:
        import sklearn
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise DatasetError(describe_problem(
            "sklearn.datasets.load_digits", "scikit-learn to be importable",
            f"ImportError: {error}", "pip install scikit-learn",
        )) from error
    bunch = load_digits()
    images = np.asarray(bunch.images)
    if images.min() < 0 or images.max() > DIGITS_MAX_VALUE:
        raise DatasetError(describe_problem(
            f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})",
            f"pixel values in 0..{DIGITS_MAX_VALUE}", f"range {images.min()}..{images.max()}",
            "reinstall scikit-learn; its bundled digits data looks modified",
        ))
    image_shape = images.shape[1:]
    arrays = {
        "x_train": scale_digits_to_uint8(images),
        "y_train": np.asarray(bunch.target).astype("<i8"),
        # No official test split: callers carve stratified splits themselves.
        "x_test": np.zeros((0,) + image_shape, dtype=np.uint8),
        "y_test": np.zeros((0,), dtype="<i8"),
    }
    return arrays, f"sklearn (scikit-learn {sklearn.__version__}, sklearn.datasets.load_digits)"
