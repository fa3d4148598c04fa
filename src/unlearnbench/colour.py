"""Colour-bias construction of UIB Fig. 2 ("MNIST-C").

Grayscale strokes are kept; every image gets one solid colour, either as background (stroke blended over
it) or as stroke colour (on black). In training the colour is a function of the label for a share
`bias_strength` of images; in test it is drawn uniformly at random, independent of the label.
Images are stored as grayscale + a colour index per image and rendered on demand, so a forget request
or an oracle can re-colour an image by changing one integer.
"""
from __future__ import annotations

import numpy as np

# matplotlib's tab10, as 8-bit RGB: ten colours that stay distinct for colour-blind readers too.
TAB10 = np.array(
    [
        [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
        [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
    ],
    dtype=np.uint8,
)


def make_palette(spec, n_classes: int) -> np.ndarray:
    """Palette as a (K, 3) uint8 array; K must be at least the number of classes (one colour per class)."""
    palette = TAB10 if isinstance(spec, str) and spec == "tab10" else np.asarray(spec, dtype=np.int64)
    if palette.ndim != 2 or palette.shape[1] != 3 or palette.min() < 0 or palette.max() > 255:
        raise ValueError(f"colour.palette: expected a list of [r, g, b] triples in 0..255, got shape {palette.shape}")
    if len(palette) < n_classes:
        raise ValueError(
            f"colour.palette: {len(palette)} colours for {n_classes} classes; give at least one colour per class"
        )
    if len({tuple(c) for c in palette.tolist()}) != len(palette):
        raise ValueError("colour.palette: colours must be distinct, or the bias cannot be read off the image")
    return palette.astype(np.uint8)


def class_colours(labels: np.ndarray, bias_strength: float, n_colours: int, rng: np.random.Generator) -> np.ndarray:
    """Training colours: colour = label for a `bias_strength` share of images, uniform for the rest.

    The biased subset is chosen per class so every class carries the same share of its colour.
    """
    labels = np.asarray(labels)
    colours = rng.integers(0, n_colours, size=len(labels))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_biased = int(round(bias_strength * len(members)))
        colours[rng.permutation(members)[:n_biased]] = c % n_colours
    return colours.astype(np.int64)


def random_colours(n: int, n_colours: int, rng: np.random.Generator) -> np.ndarray:
    """Colours drawn uniformly at random, independent of anything else (test set, oracle re-colouring)."""
    return rng.integers(0, n_colours, size=n).astype(np.int64)


def render(gray: np.ndarray, colour_idx: np.ndarray, palette: np.ndarray, mode: str = "background") -> np.ndarray:
    """Render (N, H, W) uint8 strokes with per-image colours to (N, H, W, 3) uint8 RGB.

    background: stroke intensity alpha blends white over the colour; foreground: colour scaled by alpha on black.
    """
    alpha = gray.astype(np.float32)[..., None] / 255.0
    colour = palette[np.asarray(colour_idx)].astype(np.float32)[:, None, None, :]
    if mode == "background":
        rgb = alpha * 255.0 + (1.0 - alpha) * colour
    elif mode == "foreground":
        rgb = alpha * colour
    else:
        raise ValueError(f"colour.mode: expected 'background' or 'foreground', got {mode!r}")
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
