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


PATTERN_MODES = ("patch", "border")
DEFAULT_PATCH_SIZE = {"patch": 4, "border": 2}


def render(gray: np.ndarray, colour_idx: np.ndarray, palette: np.ndarray, mode: str = "background",
           patch_size: int | None = None) -> np.ndarray:
    """Render (N, H, W) uint8 strokes with per-image colours to (N, H, W, 3) uint8 RGB.

    background: stroke intensity alpha blends white over the colour; foreground: colour scaled by alpha on black.
    patch / border (systematic pattern for natural RGB images, e.g. CIFAR-10): the image is kept and a solid
    `patch_size` x `patch_size` square in the top-left corner (patch) or a `patch_size`-pixel frame (border) is
    painted in the colour. These modes also take (N, H, W, 3) RGB input; grayscale input is replicated to RGB.
    """
    if mode in PATTERN_MODES:
        return render_pattern(gray, colour_idx, palette, mode, patch_size)
    alpha = gray.astype(np.float32)[..., None] / 255.0
    colour = palette[np.asarray(colour_idx)].astype(np.float32)[:, None, None, :]
    if mode == "background":
        rgb = alpha * 255.0 + (1.0 - alpha) * colour
    elif mode == "foreground":
        rgb = alpha * colour
    else:
        raise ValueError(f"colour.mode: expected 'background', 'foreground', 'patch' or 'border', got {mode!r}")
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def render_pattern(images: np.ndarray, colour_idx: np.ndarray, palette: np.ndarray, mode: str,
                   patch_size: int | None = None) -> np.ndarray:
    """Paint a solid colour patch (top-left corner) or border onto (N, H, W[, 3]) uint8 images -> (N, H, W, 3)."""
    size = DEFAULT_PATCH_SIZE[mode] if patch_size is None else int(patch_size)
    images = np.asarray(images)
    rgb = np.repeat(images[..., None], 3, axis=-1) if images.ndim == 3 else images.copy()
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise ValueError(f"colour.mode={mode}: expected (N, H, W) or (N, H, W, 3) images, got shape {images.shape}")
    h, w = rgb.shape[1:3]
    limit = min(h, w) if mode == "patch" else min(h, w) // 2
    if not 1 <= size <= limit:
        raise ValueError(f"colour.patch_size={size}: must be in 1..{limit} for {mode} on {h}x{w} images")
    colour = palette[np.asarray(colour_idx)].astype(np.uint8)[:, None, None, :]
    if mode == "patch":
        rgb[:, :size, :size] = colour
    else:
        rgb[:, :size] = colour
        rgb[:, -size:] = colour
        rgb[:, :, :size] = colour
        rgb[:, :, -size:] = colour
    return rgb.astype(np.uint8)
