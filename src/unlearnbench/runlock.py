"""After a crash, "run the same command again" works: stale Snakemake locks are removed, live ones never.

Snakemake locks its working directory with files in `.snakemake/locks/` and removes them when it exits; a run that
is killed (`kill -9`, an OOM kill, a power cut) leaves them behind, and every later run stops with "Directory
cannot be locked" until someone types `--unlock`. Snakemake cannot tell a stale lock from a live one. We can:
every snakemake process of this workflow, and every job process it starts, holds a shared `flock` on
`.snakemake/unlearnbench-run.lock` for as long as it lives, and the kernel drops a flock when its holder dies,
however it dies. So when a new run can take that lock exclusively, no process of any earlier run is left, and
Snakemake's lock files are stale: `start_run` removes them (what `snakemake --unlock` does) and says so. When it
cannot (another run, or a job of a killed run still stopping), it waits a little for stopping jobs, then leaves
the lock files alone, and Snakemake's own check refuses a run that would write the same files, as before.

Incomplete outputs of the killed run are redone because the workflow profile (profiles/default/config.yaml) sets
`rerun-incomplete: true`. Torch-free (the Snakefile process imports it).

Limits: Snakemake's default (file) persistence backend only; a filesystem without flock support (some NFS mounts)
turns this off with a warning, and stale locks then need `snakemake --unlock` as before.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sys
import time
from pathlib import Path

ENV_VAR = "UNLEARNBENCH_RUN_LOCK"
LOCK_FILE = "unlearnbench-run.lock"
_HELD: dict[str, int] = {}  # lock path -> descriptor, in this process


def lock_path(workdir: str | os.PathLike = ".") -> Path:
    return Path(os.path.abspath(workdir)) / ".snakemake" / LOCK_FILE


def snakemake_lock_files(workdir: str | os.PathLike = ".") -> list[Path]:
    """Snakemake's lock files in `workdir` (file persistence backend)."""
    locks = Path(workdir) / ".snakemake" / "locks"
    return sorted(locks.glob("*.lock")) if locks.is_dir() else []


def holders(path: str | os.PathLike) -> list[tuple[int, str]]:
    """(pid, command line) of the processes of this user that have `path` open (Linux /proc; [] elsewhere)."""
    target = os.path.realpath(path)
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                    found.append((int(entry.name), cmd[:120]))
                    break
            except OSError:
                continue
    return sorted(found)


def _flock(fd: int, mode: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def _open(path: Path) -> int | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        return None


def start_run(workdir: str | os.PathLike = ".", wait: float = 20.0, log=None) -> bool:
    """In the snakemake process, before Snakemake takes its lock: remove Snakemake's lock files if no process of an
    earlier run holds the run lock (waiting up to `wait` s for jobs of a killed run to stop), then hold the run lock
    shared until this process exits and export its path to the jobs (ENV_VAR). Returns whether stale lock files
    were removed."""
    log = log or (lambda text: print(text, file=sys.stderr))
    path = lock_path(workdir)
    if str(path) in _HELD:
        return False
    fd = _open(path)
    if fd is None:
        log(f"note: cannot create {path}; stale locks of a killed run need `snakemake --unlock`")
        return False
    removed = False
    try:
        stale = snakemake_lock_files(workdir)
        if stale:
            if not _flock(fd, fcntl.LOCK_EX, 0.0):
                log(f"waiting up to {wait:.0f} s for processes of an earlier run to stop: "
                    + "; ".join(f"pid {pid} ({cmd})" for pid, cmd in holders(path)))
            if _flock(fd, fcntl.LOCK_EX, wait):
                if snakemake_lock_files(workdir):
                    shutil.rmtree(Path(workdir) / ".snakemake" / "locks", ignore_errors=True)
                    removed = True
                    log(f"removed the lock of an earlier snakemake run in {os.path.abspath(workdir)} that was "
                        "killed (no process of it is left); its unfinished jobs are redone (rerun-incomplete)")
            else:
                log("another snakemake run is working in this folder (processes above); its lock stays. If this "
                    "run is refused with 'Directory cannot be locked', wait for that run to finish and run the same "
                    "command again (`--unlock` would remove that run's lock too)")
        if not _flock(fd, fcntl.LOCK_SH, 10.0):
            log(f"note: could not take the run lock {path}; continuing without it")
            os.close(fd)
            return removed
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            log(f"note: this filesystem does not support flock ({path}); stale locks of a killed run need "
                "`snakemake --unlock`")
            os.close(fd)
            return removed
        raise
    _HELD[str(path)] = fd
    os.environ[ENV_VAR] = str(path)
    return removed


def hold_shared() -> None:
    """In a job process (or the job server, whose forks inherit it): hold the run lock of the snakemake run that
    started us (ENV_VAR) shared until this process and its forks exit, so a later run does not take our outputs'
    locks away while we still write."""
    path = os.environ.get(ENV_VAR)
    if not path or path in _HELD:
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if _flock(fd, fcntl.LOCK_SH, 10.0):
            _HELD[path] = fd
            return
    except OSError:
        pass
    os.close(fd)
