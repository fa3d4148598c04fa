"""Unlearning methods, one module each, registered by name (see base.py for the interface).

Adding a method: one new module here with a @register class, its import below, and a config entry.
"""
from .base import REGISTRY, ConfigError, UnlearnContext, UnlearnData, UnlearningMethod, build_method, make_knobs
from . import finetune, gradient_ascent, influence, jit  # noqa: F401  (registration side effect)
from . import fisher, l1_sparse, random_label, scrub  # noqa: F401
from .settings import SETTINGS, apply_setting, make_setting_knobs, setting_reads

__all__ = ["REGISTRY", "ConfigError", "UnlearnContext", "UnlearnData", "UnlearningMethod", "build_method",
           "make_knobs", "SETTINGS", "apply_setting", "make_setting_knobs", "setting_reads"]
