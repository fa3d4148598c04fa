"""Progress logging of a job into its rule's log file."""
from __future__ import annotations

import logging


def get_logger(log_path: str | None) -> logging.Logger:
    """A logger that writes progress lines to the rule's log: file (and nowhere else)."""
    logger = logging.getLogger(f"unlearnbench.{log_path}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.FileHandler(log_path) if log_path else logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    return logger
