"""Name → class registries filled by the modules of a package, found on disk: adding a method, a wrapper or a
scenario is one new module (no list to edit)."""
from __future__ import annotations

import importlib
import pkgutil


def discover(package_name: str, skip: tuple[str, ...] = ("base",)) -> list[str]:
    """Import every module of a package (their @register decorators fill the registry); returns their names."""
    package = importlib.import_module(package_name)
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__)
                   if not m.name.startswith("_") and m.name not in skip)
    for name in names:
        importlib.import_module(f"{package_name}.{name}")
    return names
