"""No job outlives the snakemake run that started it.

When snakemake dies without cleaning up (`kill -9`, an OOM kill, a closed SSH session without nohup), nothing in
Snakemake stops its running jobs: they keep computing, and a rerun would collide with them (two writers of one
checkpoint; an orphan's late output accepted as up to date). This module is what every local job process uses
to die with its run:

- the snakemake process records who it is (`ENV_VAR` = "pid:start-time", set in the Snakefile's onstart for
  local runs; jobs inherit it);
- a job process watches that process (`watch`): once it is gone, the job stops itself with SIGTERM; the job's
  SIGTERM handler (`stop_on_sigterm`) raises SystemExit, so half-written temporary files are removed
  (unlearnbench.core.io) and the job's log says why it stopped; a job stuck in native code is killed 5 s later;
- the job server (unlearnbench.runtime.jobserver) does the same for the jobs forked from it, and its forks die with
  their parent (`die_with_parent`, the kernel's parent-death signal).

Without ENV_VAR (a SLURM job, a job run by hand) the watch falls back to the job's own parent process.
Torch-free; Linux reads process start times from /proc (elsewhere only the parent fallback is used).
"""
from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

ENV_VAR = "UNLEARNBENCH_SNAKEMAKE"
POLL_SECONDS = 0.25
GRACE_SECONDS = 5.0  # after SIGTERM, a job that has not exited (stuck in native code) is killed


def start_time(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (/proc/<pid>/stat field 22), or None if there is
    no such process (or no /proc). With the pid, it identifies a process even after its pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the command name may contain spaces and parentheses
    return fields[19] if len(fields) > 19 else None


def identity(pid: int | None = None) -> str:
    """"pid:start-time" of a process (default: this one), the value of ENV_VAR."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{start_time(pid) or ''}"


def _alive(ident: str) -> bool:
    pid_text, _, started = ident.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return True  # unreadable: never kill a job on a guess
    if started:
        return start_time(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_alive() -> bool:
    """Whether the snakemake process this job belongs to (ENV_VAR) still runs; True without ENV_VAR."""
    ident = os.environ.get(ENV_VAR)
    return True if not ident else _alive(ident)


def watch(on_gone=None) -> threading.Thread:
    """Start a daemon thread that calls `on_gone()` (default: SIGTERM to this process) once the snakemake process of
    this job (ENV_VAR) is gone, or, without ENV_VAR, once this process's parent is gone. Checked every
    POLL_SECONDS, and once before returning (a job started after its run was killed stops at once)."""
    ident = os.environ.get(ENV_VAR)
    parent = os.getppid()

    def gone() -> bool:
        return not _alive(ident) if ident else os.getppid() != parent

    def stop() -> None:
        if on_gone is not None:
            on_gone()
        else:
            os.kill(os.getpid(), signal.SIGTERM)

    def loop() -> None:
        while not gone():
            time.sleep(POLL_SECONDS)
        stop()

    thread = threading.Thread(target=loop, name="unlearnbench-watch-run", daemon=True)
    thread.start()
    return thread


class Stopped(SystemExit):
    """Raised in a job by SIGTERM: its run was killed, or snakemake cancelled the job."""

    def __str__(self) -> str:
        return ("stopped by SIGTERM (the snakemake run was killed, or it cancelled this job); "
                "run the same snakemake command again: it redoes this job")


def stop_on_sigterm(grace: float = GRACE_SECONDS) -> None:
    """Make SIGTERM stop this job cleanly: raise Stopped (exit status 143) in the main thread, so `finally` blocks
    run (temporary files removed, the log written); if the job has not exited `grace` s later, it is killed."""

    def handler(signum, frame):
        timer = threading.Timer(grace, os._exit, args=(128 + signum,))
        timer.daemon = True
        timer.start()
        signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM kills at once
        raise Stopped(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def die_with_parent(signum: int = signal.SIGTERM, parent: int | None = None) -> bool:
    """Ask the kernel to send `signum` to this process when its parent dies (Linux PR_SET_PDEATHSIG). Returns False
    if the parent (`parent`, when given) is already gone or the call is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, int(signum)) != 0:  # 1 = PR_SET_PDEATHSIG
            return False
    except (OSError, AttributeError):
        return False
    return parent is None or os.getppid() == parent

