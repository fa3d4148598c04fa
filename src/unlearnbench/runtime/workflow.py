"""Glue for the one workflow script: call a rule's target by keyword (in the job server when there is one), its
warnings and errors going to the rule's log file."""
from __future__ import annotations

import os
import sys

from . import lifetime, runlock
from .jobs import TARGETS, run_target


def rule_arguments(snakemake) -> dict:
    """The rule's named inputs, outputs and params, its log file and thread count, as plain Python values."""
    named = {}
    for group in (snakemake.input, snakemake.output, snakemake.params):
        named.update({k: _plain(v) for k, v in group.items()})
    named["log"] = str(snakemake.log[0])
    named["threads"] = int(snakemake.threads)
    return named


def run_rule(snakemake) -> None:
    """Run the target of `snakemake.rule` (jobs.TARGETS) with the rule's keys as keyword arguments. This client
    process never imports the target's module (torch): the keys are mapped where the job runs.

    The job dies with its run (unlearnbench.runtime.lifetime): SIGTERM stops it cleanly, and it sends itself SIGTERM once
    the snakemake process that started it is gone; in the job server, the worker follows its client. It holds the
    run lock (unlearnbench.runtime.runlock) while it lives, so a rerun never removes the lock of a job still writing."""
    lifetime.stop_on_sigterm()
    lifetime.watch()
    runlock.hold_shared()
    run_job(TARGETS[snakemake.rule], rule_arguments(snakemake), str(snakemake.log[0]), by_rule=True)


def run_job(target: str, kwargs: dict, log_path: str | None, by_rule: bool = False) -> None:
    """Run "package.module:function"(**kwargs), its errors going to `log_path`.

    In a local run with the job server on (unlearnbench.runtime.jobserver), the call runs in a fork of the server, which
    has torch imported already; otherwise, or if the server cannot take it, in this process. Either way the outputs,
    the log and the exit status are the same."""
    from .jobserver import ENV_VAR, submit

    address = os.environ.get(ENV_VAR)
    if address:
        status = submit(address, target, _plain(kwargs), log_path, by_rule)
        if status is not None:
            if status:
                sys.exit(status)
            return
    run_target(target, kwargs, log_path, by_rule)


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
