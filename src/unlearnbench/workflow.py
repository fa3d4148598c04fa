"""Glue for the workflow scripts: route warnings and errors of a job into its log file."""
from __future__ import annotations

import logging
import sys
import traceback
from contextlib import contextmanager


@contextmanager
def logged(log_path: str):
    """Append a job's warnings and any traceback to its `log:` file, then re-raise so the job fails."""
    logging.captureWarnings(True)
    handler = logging.FileHandler(log_path)
    logging.getLogger("py.warnings").addHandler(handler)
    try:
        yield
    except BaseException as exc:
        with open(log_path, "a") as log:
            log.write("".join(traceback.format_exception(exc)))
        print(f"error: {exc} (full traceback in {log_path})", file=sys.stderr)
        raise
