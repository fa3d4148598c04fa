"""Deferred imports for heavy modules (torch), so that declaring a method, a wrapper or a scenario stays cheap.

The Snakefile process imports every method and scenario module to validate a configuration; their classes and
knobs are plain Python, and their computation imports torch on first use:

    torch = lazy_import("torch")          # a module object; `torch.randn(...)` imports torch the first time

Rule for modules that use it: no torch attribute is touched at import time (no `@torch.no_grad()` decorator, no
`nn.Module` subclass at module level); use `with torch.no_grad():` inside functions.
"""
from __future__ import annotations

import importlib
import types


class _LazyModule(types.ModuleType):
    def __getattr__(self, attr):
        module = importlib.import_module(self.__name__)
        # later look-ups hit the copied attributes directly; names the module adds afterwards still resolve here
        self.__dict__.update({k: v for k, v in module.__dict__.items() if not k.startswith("__")})
        return getattr(module, attr)


def lazy_import(name: str) -> types.ModuleType:
    """A stand-in for module `name` that imports it on first attribute access."""
    return _LazyModule(name)
