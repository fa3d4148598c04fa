"""The local job server (unlearnbench.runtime.jobserver): jobs fork from it and behave as if run in the client."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from unlearnbench.runtime import jobserver
from unlearnbench.runtime.workflow import run_job

from conftest import job_spec

pytestmark = pytest.mark.timeout(120)
TARGETS = "jobserver_targets"
LIGHT = ("unlearnbench.runtime.workflow",)  # protocol tests need no torch in the server


@pytest.fixture
def server():
    srv = jobserver.start(preload=LIGHT, idle_timeout=120)
    yield srv
    srv.stop()


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_job_runs_in_a_fork_with_the_clients_cwd_env_and_stdout(server, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOBSERVER_TEST_VALUE", "from-client")
    out = tmp_path / "report.json"
    status = jobserver.submit(server.address, f"{TARGETS}:report", {"path": str(out)}, str(tmp_path / "log"))
    assert status == 0
    seen = json.loads(out.read_text())
    assert seen["pid"] not in (os.getpid(), server.pid)
    assert seen["cwd"] == str(tmp_path)
    assert seen["env"] == "from-client"
    assert "hello from the worker" in capfd.readouterr().out  # the worker wrote to our stdout


def test_failure_gives_status_1_and_the_traceback_in_the_log(server, tmp_path):
    log = tmp_path / "job.log"
    status = jobserver.submit(server.address, f"{TARGETS}:fail", {"message": "bad knob"}, str(log))
    assert status == 1
    assert "ValueError: bad knob" in log.read_text()


def test_exit_codes_and_signals_come_back(server, tmp_path):
    assert jobserver.submit(server.address, f"{TARGETS}:exit_with", {"code": 3}, str(tmp_path / "log")) == 3
    assert jobserver.submit(server.address, f"{TARGETS}:die_by_signal", {"signum": signal.SIGKILL},
                            str(tmp_path / "log")) == 128 + signal.SIGKILL


def test_run_job_exits_with_the_jobs_status(server, tmp_path, monkeypatch):
    monkeypatch.setenv(jobserver.ENV_VAR, server.address)
    with pytest.raises(SystemExit) as exc:
        run_job(f"{TARGETS}:exit_with", {"code": 4}, str(tmp_path / "log"))
    assert exc.value.code == 4


def test_a_client_that_goes_away_takes_its_worker_with_it(server, tmp_path):
    pid_file = tmp_path / "worker.pid"
    client = subprocess.Popen(
        [sys.executable, "-c", "import sys; from unlearnbench.runtime import jobserver; "
         f"sys.exit(jobserver.submit({server.address!r}, '{TARGETS}:sleep_forever', {{'pid_path': {str(pid_file)!r}}}, None))"],
        cwd=Path(__file__).parent, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)})
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and client.poll() is None, "the worker never started"
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        client.kill()
        assert _gone(worker, within=10), "the worker outlived its client"
    finally:
        client.kill()
        client.wait(timeout=10)


def test_the_server_exits_when_its_parent_dies(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", "import time; from unlearnbench.runtime import jobserver; "
         f"s = jobserver.start(preload={LIGHT!r}); print(s.pid, flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(parent.stdout.readline())
        parent.kill()
        parent.wait(timeout=10)
        assert _gone(server_pid, within=10), "the server outlived the snakemake process that started it"
    finally:
        parent.kill()
        parent.wait(timeout=10)


def test_unreachable_or_refusing_server_means_the_client_runs_the_job(server, tmp_path, monkeypatch):
    out = tmp_path / "report.json"
    monkeypatch.setenv(jobserver.ENV_VAR, str(tmp_path / "no-such.sock"))
    run_job(f"{TARGETS}:report", {"path": str(out)}, str(tmp_path / "log"))
    assert json.loads(out.read_text())["pid"] == os.getpid()

    # another interpreter (e.g. a conda env) is refused, so nothing runs against the wrong packages
    monkeypatch.setattr(jobserver, "_interpreter", lambda: ("/other/python", "/other"))
    assert jobserver.submit(server.address, f"{TARGETS}:report", {"path": str(out)}, None) is None


def test_stop_removes_the_socket_and_the_process():
    srv = jobserver.start(preload=LIGHT)
    srv.stop()
    assert srv.process.poll() is not None
    assert not Path(srv.directory).exists()


def test_an_unlearning_job_gives_identical_outputs_in_the_server_and_in_process(random_setup, tmp_path,
                                                                                 monkeypatch):
    """Determinism: forking from a process that imported torch changes nothing in the numbers."""
    s = random_setup

    def run(tag):
        run_job("unlearnbench.steps.unlearning:run_unlearning", dict(
            experiment=str(s.data), request=str(s.request), start=str(s.baseline), model=str(tmp_path / f"{tag}.pt"),
            run=str(tmp_path / f"{tag}.json"), outputs=str(tmp_path / f"{tag}.npz"),
            spec=job_spec("finetune", {"epochs": 2, "lr": 0.02}, tag), identity={"dataset": "d", "scenario": "s",
                                                                              "seed": 0},
            seed=0, device="cpu", threads=1, log=str(tmp_path / "log")), str(tmp_path / "log"))
        with np.load(tmp_path / f"{tag}.npz") as z:
            return {k: z[k] for k in z.files}

    monkeypatch.delenv(jobserver.ENV_VAR, raising=False)
    local = run("local")
    srv = jobserver.start()
    try:
        monkeypatch.setenv(jobserver.ENV_VAR, srv.address)
        served = run("served")
    finally:
        srv.stop()
    assert local.keys() == served.keys()
    for key in local:
        np.testing.assert_array_equal(local[key], served[key], err_msg=key)
