"""Unlearning methods, one module each, registered by name (see base.py for the interface).

Adding a method: one new module here with a @register class, its import below, and a config entry.
"""
from .base import REGISTRY, ConfigError, UnlearnContext, UnlearnData, UnlearningMethod, build_method, make_knobs
from . import finetune, gradient_ascent, influence, jit  # noqa: F401  (registration side effect)

__all__ = ["REGISTRY", "ConfigError", "UnlearnContext", "UnlearnData", "UnlearningMethod", "build_method",
           "make_knobs"]
