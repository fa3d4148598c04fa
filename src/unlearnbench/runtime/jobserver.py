"""A fork server for local workflow runs: torch and the package are imported once, and every job forks from it.

Why: on the embedded default a job's own work takes about half a second, while `import torch` takes
1.7-2.6 s on a 2-core machine; with one fresh interpreter per job, start-up was most of the run. The Snakefile
starts one server per local `snakemake` invocation (config `job_server`), and the workflow scripts hand their
call to it through `unlearnbench.runtime.workflow.run_job`. Each job still runs in its own process (a fork of the
server, which has run no torch operation, so no thread pool or RNG state is shared), with the client's working
directory, environment, sys.path and stdout/stderr, and its exit status is the client's exit status.

Protocol (Unix socket in a private 0700 directory): the client sends an 8-byte length plus its stdin, stdout
and stderr descriptors (SCM_RIGHTS), then the pickled request; the server forks a handler, which forks the
worker and reports the worker's exit status as 4 bytes.

No job outlives its run (unlearnbench.runtime.lifetime): each handler leads its own process group (handler + worker).
The server stops when the snakemake process that started it is gone (checked every second), on SIGTERM, or after
`idle_timeout` s with no job running, and before exiting it stops every running job: SIGTERM to each handler,
which stops its worker (SIGTERM: the worker removes its temporary files and logs why; SIGKILL 5 s later), then
SIGKILL to any process group left. A client that goes away (it stops itself once its snakemake is gone) makes
the handler stop the worker the same way. A server that dies abruptly takes its handlers with it, and a handler
its worker (PR_SET_PDEATHSIG, SIGTERM).

Not used (jobs run in their own interpreter as before) when: the config says `job_server: false`, the run is
not local (SLURM jobs), or the job's interpreter is not the server's (e.g. --sdm conda).
"""
from __future__ import annotations

import argparse
import importlib
import os
import pickle
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import lifetime, runlock
from .jobs import run_target

ENV_VAR = "UNLEARNBENCH_JOB_SERVER"
# What every torch job needs; report modules (sklearn, pandas, matplotlib) are few jobs and load in them.
DEFAULT_PRELOAD = ("torch", "numpy", "unlearnbench.steps.training", "unlearnbench.steps.unlearning",
                   "unlearnbench.methods", "unlearnbench.scenarios", "unlearnbench.datasets.experiment")
REFUSED = 255  # status sent instead of running: the client runs the job itself

_HEADER = struct.Struct("!Q")
_STATUS = struct.Struct("!i")


# ------------------------------------------------------------------------------------------------- client

def submit(address: str, target: str, kwargs: dict, log_path: str | None, by_rule: bool = False) -> int | None:
    """Run `target(**kwargs)` in a fork of the server at `address`; return its exit status.

    None: the server could not be reached or refused the job (different interpreter), so nothing ran and the
    caller should run the job itself."""
    request = {"target": target, "kwargs": kwargs, "by_rule": by_rule, "log": log_path, "cwd": os.getcwd(),
               "env": dict(os.environ), "sys_path": list(sys.path), "executable": _interpreter()}
    payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(address)
    except OSError:
        conn.close()
        return None
    with conn:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        stdio, opened = [], []
        for fd in (0, 1, 2):
            try:
                os.fstat(fd)
            except OSError:  # a closed descriptor: the worker gets /dev/null there
                fd = os.open(os.devnull, os.O_RDWR)
                opened.append(fd)
            stdio.append(fd)
        try:
            socket.send_fds(conn, [_HEADER.pack(len(payload))], stdio)
        finally:
            for fd in opened:
                os.close(fd)
        conn.sendall(payload)
        reply = _recv_exact(conn, _STATUS.size)
    if reply is None:
        print("error: the job server lost this job (it was stopped or killed)", file=sys.stderr)
        return 1
    (status,) = _STATUS.unpack(reply)
    return None if status == REFUSED else status


def _interpreter() -> tuple[str, str]:
    return (os.path.realpath(sys.executable), os.path.realpath(sys.prefix))


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = conn.recv(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------------------------- server

def serve(address: str, parent_pid: int, preload=DEFAULT_PRELOAD, idle_timeout: float = 3600.0) -> None:
    """Accept jobs until the snakemake process that started us (`parent_pid`) is gone, SIGTERM, or `idle_timeout`
    s without a running job; then stop every running job (`_stop_handlers`) before returning."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address + ".new")
    listener.listen(256)  # clients that arrive while the preload runs wait in the backlog
    os.rename(address + ".new", address)  # the address appears only once it accepts (start() waits for it)
    handlers: set[int] = set()  # pids of running handlers; each leads its process group (handler + worker)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    runlock.hold_shared()  # inherited by every handler and worker: a rerun waits for them (unlearnbench.runtime.runlock)
    try:
        for module in preload:
            importlib.import_module(module)
        last_job = time.monotonic()
        while True:
            ready, _, _ = select.select([listener], [], [], 1.0)
            _reap(handlers)
            if os.getppid() != parent_pid:
                return  # the snakemake run that started us is gone: its jobs must not outlive it
            if handlers:
                last_job = time.monotonic()
            if not ready:
                if time.monotonic() - last_job > idle_timeout:
                    return
                continue
            conn, _ = listener.accept()
            last_job = time.monotonic()
            server = os.getpid()
            pid = os.fork()
            if pid == 0:
                status = 1
                try:
                    listener.close()
                    signal.signal(signal.SIGTERM, _request_stop)
                    os.setpgid(0, 0)
                    # the server's death (even by SIGKILL) stops this job; the worker follows its handler
                    if not lifetime.die_with_parent(signal.SIGTERM, parent=server):
                        return
                    _handle(conn)
                    status = 0
                finally:
                    os._exit(status)  # never run the server's exit handlers in a child
            try:
                os.setpgid(pid, pid)  # also here: the group exists before we could signal it
            except OSError:  # the child did it first, or has exited already
                pass
            handlers.add(pid)
            conn.close()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        listener.close()
        _stop_handlers(handlers)


def _reap(handlers: set[int]) -> None:
    """Collect handlers that have exited (a pid stays ours, and its group's id unused, until reaped here)."""
    for pid in list(handlers):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            handlers.discard(pid)


def _stop_handlers(handlers: set[int], grace: float = lifetime.GRACE_SECONDS + 2.0) -> None:
    """Stop every running job: SIGTERM to each handler (which stops its worker cleanly, _handle), then, after
    `grace` s, SIGKILL to the process group of any handler still there."""
    for pid in handlers:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while handlers and time.monotonic() < deadline:
        _reap(handlers)
        time.sleep(0.05)
    for pid in list(handlers):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        handlers.discard(pid)


_STOP = False  # set in a handler by SIGTERM (the server stops its jobs)


def _request_stop(*_) -> None:
    global _STOP
    _STOP = True


def _handle(conn: socket.socket) -> None:
    header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
    try:
        if len(header) < _HEADER.size or len(fds) != 3:
            return
        payload = _recv_exact(conn, _HEADER.unpack(header)[0])
        if payload is None:
            return
        request = pickle.loads(payload)
        if tuple(request["executable"]) != _interpreter():
            conn.sendall(_STATUS.pack(REFUSED))
            return
        if _STOP:
            return
        handler = os.getpid()
        pid = os.fork()
        if pid == 0:
            conn.close()
            os._exit(_work(request, fds, handler))
    finally:
        for fd in fds:
            os.close(fd)
    status = _wait_or_kill(pid, conn)
    try:
        conn.sendall(_STATUS.pack(status))
    except OSError:  # the client is gone (it was killed, or its run was)
        pass


def _wait_or_kill(pid: int, conn: socket.socket) -> int:
    """Wait for the worker; if the client hangs up first, or the server stops its jobs, stop the worker (SIGTERM,
    then SIGKILL after a grace period). Returns a shell-style exit status."""
    pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return _exit_status(status)
            waiting = [conn] + ([pidfd] if pidfd is not None else [])
            ready, _, _ = select.select(waiting, [], [], 0.2 if pidfd is not None else 0.02)
            if conn in ready or _STOP:  # the client sends nothing after its request: readable means it hung up
                return _kill(pid)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _exit_status(status: int) -> int:
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _kill(pid: int, grace: float = lifetime.GRACE_SECONDS) -> int:
    """Stop a worker: SIGTERM (it removes its temporary files and logs why), SIGKILL after `grace` s; reap it."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return _exit_status(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    return _exit_status(os.waitpid(pid, 0)[1])


def _work(request: dict, fds: list[int], handler: int) -> int:
    """The worker: become the client (stdio, cwd, environment, sys.path), run the target, return its status."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not lifetime.die_with_parent(signal.SIGTERM, parent=handler):  # the handler's death stops the worker
        return 128 + signal.SIGTERM
    lifetime.stop_on_sigterm()
    for target_fd, fd in enumerate(fds):
        os.dup2(fd, target_fd)
    for fd in fds:
        os.close(fd)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    status = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:] = request["sys_path"]
        run_target(request["target"], request["kwargs"], request["log"], request.get("by_rule", False))
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        status = 130
    except BaseException:  # already written to the log and stderr by run_target
        if request.get("log") is None:
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    return status


# ---------------------------------------------------------------------------------------- starting/stopping

@dataclass
class JobServer:
    process: subprocess.Popen
    address: str
    directory: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        shutil.rmtree(self.directory, ignore_errors=True)


def start(preload=DEFAULT_PRELOAD, idle_timeout: float = 3600.0, log_path: str | None = None,
          timeout: float = 60.0) -> JobServer:
    """Start a server as a child of this process and wait until it listens (not until its preload is done:
    early clients queue). Stop it with JobServer.stop()."""
    directory = tempfile.mkdtemp(prefix="unlearnbench-jobs-")  # mode 0700: only this user can connect
    address = os.path.join(directory, "jobs.sock")
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "unlearnbench.runtime.jobserver", "--address", address, "--parent", str(os.getpid()),
             "--idle-timeout", str(idle_timeout), "--preload", ",".join(preload)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    finally:
        if log_path:
            log.close()
    server = JobServer(process, address, directory)
    deadline = time.monotonic() + timeout
    while not os.path.exists(address):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            where = f"; see {log_path}" if log_path else ""
            raise RuntimeError(f"the job server did not start (exit status {process.poll()}){where}; "
                               "set job_server: false in the config to run every job in its own interpreter")
        time.sleep(0.01)
    return server


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--idle-timeout", type=float, default=3600.0)
    parser.add_argument("--preload", default=",".join(DEFAULT_PRELOAD))
    args = parser.parse_args(argv)
    try:
        serve(args.address, args.parent, [m for m in args.preload.split(",") if m], args.idle_timeout)
    except KeyboardInterrupt:
        pass
    finally:
        Path(args.address).unlink(missing_ok=True)
        directory = Path(args.address).parent
        if directory.name.startswith("unlearnbench-jobs-"):  # ours (start()); gone if stop() ran first
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
