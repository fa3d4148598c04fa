"""After a crash, "run the same command again" works: stale Snakemake locks are removed, live ones never.

Snakemake locks its working directory with files in `.snakemake/locks/` and removes them when it exits; a run that
is killed (`kill -9`, an OOM kill, a power cut) leaves them behind, and every later run stops with "Directory
cannot be locked" until someone types `--unlock`. Snakemake cannot tell a stale lock from a live one. We can:
every snakemake process of this workflow, and every job process it starts, holds a shared `flock` on
`.snakemake/unlearnbench-run.lock` for as long as it lives, and the kernel drops a flock when its holder dies,
however it dies. So when a new run can take that lock exclusively, no process of any earlier run is left, and
Snakemake's lock files are stale: `start_run` removes them (what `snakemake --unlock` does) and says so. When it
cannot, either another snakemake run is live (its snakemake processes also hold `unlearnbench-main.lock`): then
the lock files stay and Snakemake's own check refuses a run that would write the same files, as before; or only
jobs of a killed run are left, stopping (unlearnbench.runtime.lifetime): then it waits for them (at most `wait` s).

Incomplete outputs of the killed run are redone because the workflow profile (profiles/default/config.yaml) sets
`rerun-incomplete: true`. Torch-free (the Snakefile process imports it).

A cluster run is different: a killed snakemake leaves its submitted jobs running in the cluster, where no lock of
ours can see them. A run that submits jobs marks itself (`started(local=False)`, removed by `finished()` when it
ends, which a killed run never does); the lock of such a run is never removed here: the message says to check the
queue (`squeue --me`, `scancel`), then `snakemake --unlock`.

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
LOCK_FILE = "unlearnbench-run.lock"  # held shared by every snakemake process of a run and every job process
MAIN_LOCK_FILE = "unlearnbench-main.lock"  # held shared by snakemake processes only (a run is live)
CLUSTER_MARK = "unlearnbench-cluster-run"  # exists while (or since a killed) run submits cluster jobs
_HELD: dict[str, int] = {}  # lock path -> descriptor, in this process


def lock_path(workdir: str | os.PathLike = ".", name: str = LOCK_FILE) -> Path:
    return Path(os.path.abspath(workdir)) / ".snakemake" / name


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


def start_run(workdir: str | os.PathLike = ".", wait: float = 30.0, log=None) -> bool:
    """In the snakemake process, before Snakemake takes its lock (the Snakefile, at parse time): remove Snakemake's
    lock files if no process of an earlier local run is left (waiting up to `wait` s for the jobs of a killed run
    to stop), then hold the run locks shared until this process exits. Returns whether stale lock files were
    removed."""
    log = log or (lambda text: print(text, file=sys.stderr))
    path, main_path = lock_path(workdir), lock_path(workdir, MAIN_LOCK_FILE)
    if str(path) in _HELD:
        return False
    fd, main_fd = _open(path), _open(main_path)
    if fd is None or main_fd is None:
        for f in (fd, main_fd):
            if f is not None:
                os.close(f)
        log(f"note: cannot create {path}; a killed run's stale lock would need `snakemake --unlock`")
        return False
    removed = False
    try:
        if snakemake_lock_files(workdir) and lock_path(workdir, CLUSTER_MARK).exists() \
                and _flock(main_fd, fcntl.LOCK_EX, 0.0):
            log("the last snakemake run in this folder submitted cluster jobs and was killed: its jobs may still be "
                "running or queued, so its lock stays. Check `squeue --me` (scancel what belongs to it), then run "
                "`snakemake --unlock` and the same command again")
        elif snakemake_lock_files(workdir):
            if not _flock(main_fd, fcntl.LOCK_EX, 0.0):
                log("note: another snakemake run is live in this folder; its lock stays (if this run is refused with "
                    "'Directory cannot be locked', wait for that run to finish and run the same command again)")
            else:
                if not _flock(fd, fcntl.LOCK_EX, 0.0):
                    log(f"waiting up to {wait:.0f} s for the jobs of a killed run to stop: "
                        + "; ".join(f"pid {pid} ({cmd})" for pid, cmd in holders(path)))
                if _flock(fd, fcntl.LOCK_EX, wait):
                    if snakemake_lock_files(workdir):
                        shutil.rmtree(Path(workdir) / ".snakemake" / "locks", ignore_errors=True)
                        removed = True
                        log(f"removed the lock left in {os.path.abspath(workdir)} by a snakemake run that was killed "
                            "(no process of it is left); its unfinished jobs are redone (rerun-incomplete)")
                else:
                    log("processes of a killed run are still running (above); their lock stays: stop them, then run "
                        "the same command again")
        if not (_flock(main_fd, fcntl.LOCK_SH, 10.0) and _flock(fd, fcntl.LOCK_SH, 10.0)):
            log(f"note: could not take the run lock {path}; continuing without it")
            os.close(fd)
            os.close(main_fd)
            return removed
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            log(f"note: this filesystem does not support flock ({path}); a killed run's stale lock would need "
                "`snakemake --unlock`")
            os.close(fd)
            os.close(main_fd)
            return removed
        raise
    _HELD[str(path)], _HELD[str(main_path)] = fd, main_fd
    return removed


def started(local: bool, workdir: str | os.PathLike = ".") -> None:
    """In the snakemake process once it runs jobs (the Snakefile's onstart): local jobs hold the run lock
    (ENV_VAR, `hold_shared`); a run that submits cluster jobs marks itself until `finished`."""
    path = lock_path(workdir)
    if local:
        if str(path) in _HELD:
            os.environ[ENV_VAR] = str(path)
    else:
        try:
            lock_path(workdir, CLUSTER_MARK).write_text(f"{os.getpid()}\n")
        except OSError:
            pass


def finished(workdir: str | os.PathLike = ".") -> None:
    """The run ended (onsuccess / onerror): it leaves no cluster jobs behind."""
    lock_path(workdir, CLUSTER_MARK).unlink(missing_ok=True)


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
