"""Errors every layer raises, kept free of heavy imports (the Snakefile process imports them)."""
from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the config key and the fix."""


class SizeError(ConfigError):
    """A configuration asks for more than its data sizes allow (a split, a forget set, the metrics' cross-validation);
    the message names the key."""


class InputFileError(ValueError):
    """An input file of a job (bundle, checkpoint) is missing, unreadable or not what was expected; the message
    names the file and the fix."""
