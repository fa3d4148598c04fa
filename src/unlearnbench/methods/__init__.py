"""Unlearning methods and wrappers (settings), one module each, registered by name (see base.py for the interface).

Adding a method: one new module here with a @register class; it is found on disk (unlearnbench.core.registry.discover).
"""
from ..core.registry import discover
from .base import (DATA_KINDS, REGISTRY, STANDARD, WRAPPERS, ConfigError, UndeclaredReadError, UnlearnContext,
                   UnlearnData, UnlearningMethod, Wrapper, build_method, make_knobs, make_setting_knobs, zero_shot)

MODULES = discover(__name__)

__all__ = ["DATA_KINDS", "MODULES", "REGISTRY", "STANDARD", "WRAPPERS", "ConfigError", "UndeclaredReadError",
           "UnlearnContext", "UnlearnData", "UnlearningMethod", "Wrapper", "build_method", "make_knobs",
           "make_setting_knobs", "zero_shot"]
