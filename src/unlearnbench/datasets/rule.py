"""Rule prepare_source's entry point."""
from __future__ import annotations

import os


def prepare_source(*, data: str, name: str, mirror: str | None, download_dir: str) -> None:
    """Fetch, verify and decode dataset `name` into `data` (its folder gets data.npz + manifest.json)."""
    from .prepare import prepare_dataset

    prepare_dataset(name, os.path.dirname(data), download_dir=download_dir, mirror=mirror)
