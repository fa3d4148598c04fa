"""Glue for the workflow scripts: run a job's call (in the job server when there is one) and route its warnings
and errors into its log file."""
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


def run_job(log_path: str, target: str, *args, **kwargs) -> None:
    """Run "package.module:function"(*args, **kwargs) for a workflow script, its errors going to `log_path`.

    In a local run with the job server on (unlearnbench.jobserver), the call runs in a fork of the server,
    which has torch imported already; otherwise, or if the server cannot take it, in this process. Either way
    the outputs, the log and the exit status are the same."""
    import os

    from .jobserver import ENV_VAR, run_target, submit

    address = os.environ.get(ENV_VAR)
    if address:
        status = submit(address, target, _plain(args), _plain(kwargs), log_path)
        if status is not None:
            if status:
                sys.exit(status)
            return
    run_target(target, args, kwargs, log_path)


def _plain(value):
    """Snakemake's str/list/dict subclasses as builtins, so the request unpickles without snakemake classes."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if type(value) is tuple:
        return tuple(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
