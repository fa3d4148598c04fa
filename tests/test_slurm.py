"""`snakemake --profile slurm` against a real single-node SLURM on localhost (Debian 12 packages).

Brings the cluster up with tests/slurm/bringup.sh (installs slurmctld slurmd slurm-client munge with apt-get
if missing; needs root), runs the scaled-down grid of tests/slurm/test_config.yaml through the repository's
profile, and checks: artifacts and metrics equal a local run of the same config; SLURM's job records
(jobcomp/filetxt: no accounting database needed) show the jobs completed; a fault-injected job fails while the
others finish under --keep-going; a job killed with scancel mid-run is reported failed; a rerun redoes exactly
what is missing. Every snakemake call runs under `timeout -s INT` (snakemake ignores SIGTERM while jobs run).
"""
from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "slurm"
TEST_CONFIG = HERE / "test_config.yaml"
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
FAULT = ("digits_c", "bias", 1, "gradient_ascent")  # dataset/scenario/seed/run made to fail in the first run
GROUP_SIZE = 4  # group-components for the test: 12 grouped jobs (8 unlearn + 4 evaluate_original) -> 3 sbatch
# Metrics that are wall-clock times, not results: excluded from the SLURM-vs-local comparison.
TIMING_METRICS = {"ut_seconds", "ut_minutes", "ut_device_seconds"}


def sh(cmd: list[str], timeout: float = 10, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)


# --------------------------------------------------------------------------------------- the cluster ----
class Cluster:
    def __init__(self, state: Path, bringup_seconds: float):
        self.state, self.bringup_seconds = state, bringup_seconds

    def records(self) -> dict[str, dict[str, str]]:
        """SLURM's record of every finished job (jobcomp/filetxt), by job id."""
        log = self.state / "jobcomp.log"
        out = {}
        for line in log.read_text().splitlines() if log.exists() else []:
            fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            out[fields["JobId"]] = fields
        return out

    def queue(self) -> list[tuple[str, str, str]]:
        """(job id, state, comment) of the jobs squeue knows (MinJobAge=300 keeps finished ones)."""
        r = sh(["timeout", "10", "squeue", "-h", "-t", "all", "-o", "%i|%T|%k"], timeout=15)
        return [tuple(line.split("|", 2)) for line in r.stdout.splitlines() if line.count("|") == 2]


def _install_packages() -> str | None:
    """None when the SLURM and munge binaries are there (installing them if needed), else a skip reason."""
    needed = ["slurmctld", "slurmd", "sbatch", "squeue", "munged"]
    if all(shutil.which(b) for b in needed):
        return None
    if shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install " + " ".join(PACKAGES)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
                       capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        r = subprocess.run(["sh", "-c", "apt-get update -q && apt-get install -y -q --no-install-recommends "
                            + " ".join(PACKAGES)], capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0 or not all(shutil.which(b) for b in needed):
        return f"apt-get install {' '.join(PACKAGES)} failed: {r.stderr.strip()[-500:]}"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("the SLURM test needs root (it installs Debian packages and writes /etc/slurm, /etc/munge)")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed: pip install -e '.[slurm]'")
    t0 = time.monotonic()
    reason = _install_packages()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    try:
        r = subprocess.run([str(HERE / "bringup.sh"), str(state)], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            pytest.fail(f"SLURM bring-up failed:\n{r.stdout}\n{r.stderr}")
        c = Cluster(state, time.monotonic() - t0)
        print(f"\nSLURM up in {c.bringup_seconds:.1f} s (including any apt-get install); state in {state}")
        yield c
    finally:
        # Jobs outlive slurmd (slurmstepd): cancel what is left on this private cluster, then stop the
        # daemons by the PIDs bringup.sh recorded.
        subprocess.run(["timeout", "10", "scancel", "--partition", "debug"], capture_output=True)
        time.sleep(1)
        subprocess.run([str(HERE / "teardown.sh"), str(state)], capture_output=True, timeout=60)


# ------------------------------------------------------------------------------------------ snakemake ----
class Run:
    def __init__(self, proc: subprocess.Popen, log: Path):
        self.proc, self.log = proc, log

    def wait(self) -> "Run":
        self.proc.wait()
        self.rc = self.proc.returncode
        self.text = self.log.read_text()
        return self

    @property
    def submitted(self) -> list[str]:
        return re.findall(r"submitted with SLURM jobid (\d+)", self.text)

    def job_stats(self) -> dict[str, int]:
        """The 'Job stats' table of the run: rule -> number of jobs."""
        m = re.search(r"Job stats:\njob\s+count\n[- ]+\n(.*?)\ntotal", self.text, re.S)
        assert m, f"no job stats in {self.log}"
        return {rule: int(n) for rule, n in (line.split() for line in m.group(1).splitlines())}


FAULT_VAR = "UNLEARNBENCH_TEST_FAULT"
# Appended to the test's copy of unlearning.py (production code has no fault hook): the unlearning job whose
# dataset/scenario/seed/run equals $UNLEARNBENCH_TEST_FAULT fails.
FAULT_HOOK = f"""

def _inject_fault(function):
    import functools
    import os

    @functools.wraps(function)
    def wrapper(**kwargs):
        who = "{{dataset}}/{{scenario}}/{{seed}}".format(**kwargs["identity"]) + "/" + kwargs["spec"]["run"]
        if os.environ.get("{FAULT_VAR}") == who:
            raise RuntimeError("fault injected by tests/test_slurm.py into " + who)
        return function(**kwargs)
    return wrapper


run_unlearning = _inject_fault(run_unlearning)
"""


SLOW_VAR = "UNLEARNBENCH_TEST_SLOW_TRAINING"
# Appended to the test's copy of training.py: a training job whose model path contains $UNLEARNBENCH_TEST_SLOW_TRAINING
# sleeps 3 s at the end of every epoch (before its epoch checkpoint), so the test can preempt it mid-training.
SLOW_HOOK = f"""

_fit_unhooked = _fit


def _fit(data, images, labels, training, seed, device, threads, log, checkpoint_path, request, on_epoch_end=None,
         **kwargs):
    import os
    import time

    slow = os.environ.get("{SLOW_VAR}")
    if slow and slow in str(checkpoint_path):
        inner = on_epoch_end

        def on_epoch_end(epoch, net):
            if inner is not None:
                inner(epoch, net)
            time.sleep(3)
    return _fit_unhooked(data, images, labels, training, seed, device, threads, log, checkpoint_path, request,
                         on_epoch_end=on_epoch_end, **kwargs)
"""


def copy_workflow(dest: Path) -> Path:
    """The repository's workflow in `dest`, with the fault and slow-training hooks in its copy of the package."""
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, dest / name)
    for name in ("rules", "workflow_scripts", "config", "envs", "report", "slurm"):
        shutil.copytree(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    with open(dest / "src/unlearnbench/steps/unlearning.py", "a") as f:
        f.write(FAULT_HOOK)
    with open(dest / "src/unlearnbench/steps/training.py", "a") as f:
        f.write(SLOW_HOOK)
    return dest


def start(results: Path, log: Path, *extra: str, slurm: bool = True, seconds: int = 420, workdir: Path = ROOT,
          fault: str | None = None, config: Path = TEST_CONFIG, retries: int = 0, slow: str | None = None) -> Run:
    cmd = ["timeout", "-s", "INT", "-k", "30", str(seconds), SNAKEMAKE,
           "--configfile", str(config), "--config", f"results={results}"]
    if slurm:
        cmd += [
            "--profile", "slurm",
            # the test cluster: default partition, no accounts; the profile's cluster block is replaced
            "--default-resources", "mem_mb=500", "runtime=10", "--slurm-no-account",
            "--slurm-logdir", str(results.parent / f"{results.name}_slurm_logs"),
            # poll fast: these jobs take seconds, not hours
            "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
            "--group-components", f"unlearn={GROUP_SIZE}",
            "--retries", str(retries),  # 0: the injected fault must fail once, not three times
            "--latency-wait", "5",
        ]
    else:
        cmd += ["--cores", "2"]
    cmd += list(extra)
    # SLURM jobs inherit this environment (sbatch --export=ALL): the copy's package and the fault to inject
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    env.pop(FAULT_VAR, None)
    env.pop(SLOW_VAR, None)
    if fault:
        env[FAULT_VAR] = fault
    if slow:
        env[SLOW_VAR] = slow
    fh = open(log, "w")
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=fh, stderr=subprocess.STDOUT, text=True, env=env)
    fh.close()
    return Run(proc, log)


def run_dirs(results: Path) -> list[Path]:
    import yaml

    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    return [results / ds / sc / f"seed{seed}" / run for ds, spec in cfg["datasets"].items()
            for sc in spec["scenarios"] for seed in range(cfg["seeds"])
            for run in [*REFERENCES[sc], "original", *cfg["methods"]]]


# the reference oracles each scenario type declares (Scenario.references; the bias scenario adds Warnecke's)
REFERENCES = {"bias": ["retrain", "retrain_replace"], "random": ["retrain"]}
ORACLE_COMMENT = r"rule_retrain_oracle_wildcards_(.+)_(\w+)_(\d+)_(retrain(?:_[a-z]+)?)$"


ARTIFACTS = ["paper/table_uib.tex", "paper/fig_metrics.pdf", "paper/fig_bias_trace.pdf",
             "summary/runs.csv", "summary/summary.csv", "summary/stats.csv", "summary/summary.md"]


def cancel_when_running(cluster: Cluster, results: Path, found: dict, stop: threading.Event) -> None:
    """scancel the first retrain_oracle job mid-training: once its per-epoch checkpoint exists (or after it
    has run 20 s without one)."""
    seen: dict[str, float] = {}
    while not stop.is_set():
        for jobid, state, comment in cluster.queue():
            m = re.match(ORACLE_COMMENT, comment)
            if state == "RUNNING" and m:
                seen.setdefault(jobid, time.monotonic())
                epoch = results / m.group(1) / m.group(2) / f"seed{m.group(3)}" / m.group(4) / "model.pt.epoch"
                if epoch.exists() or time.monotonic() - seen[jobid] >= 20:
                    sh(["timeout", "10", "scancel", jobid], timeout=15)
                    found.update(jobid=jobid, comment=comment)
                    # A short training can finish (and delete its checkpoint) between our look and the
                    # cancel taking effect: what the rerun must resume from is what was left once the job
                    # had stopped.
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline and any(
                            j == jobid and st in ("RUNNING", "COMPLETING") for j, st, _ in cluster.queue()):
                        time.sleep(0.3)
                    found["checkpoint"] = epoch.exists()
                    return
        time.sleep(0.3)


def same_metrics(results: Path, local: Path) -> int:
    """Every non-timing metric of two runs' summary/runs.csv is equal; returns how many rows were compared. Same
    seed, same thread count (threads: 1 in both), same CPU: the numbers are reproducible; the tolerance only absorbs
    last-bit differences of BLAS paths, and a resumed training replays its RNG state."""
    import numpy as np
    import pandas as pd

    key = ["dataset", "scenario", "setting", "method", "run", "seed", "metric"]
    a = pd.read_csv(results / "summary/runs.csv").set_index(key).sort_index()
    b = pd.read_csv(local / "summary/runs.csv").set_index(key).sort_index()
    assert a.index.equals(b.index)
    keep = ~a.index.get_level_values("metric").isin(TIMING_METRICS)
    np.testing.assert_allclose(a["value"][keep].to_numpy(float), b["value"][keep].to_numpy(float),
                               rtol=1e-6, atol=1e-9, equal_nan=True)
    return int(keep.sum())


def wait_watching(run: Run, watch, cluster: Cluster, results: Path) -> dict:
    """Wait for `run` while `watch(cluster, results, found, stop)` runs beside it; what the watcher found."""
    found, stop = {}, threading.Event()
    watcher = threading.Thread(target=watch, args=(cluster, results, found, stop))
    watcher.start()
    try:
        run.wait()
    finally:
        stop.set()
        watcher.join()
    return found


# ------------------------------------------------------------------------------------------- the test ----
def test_cluster_has_fake_gpus(cluster):
    r = sh(["timeout", "10", "sinfo", "-h", "-o", "%G %c %T"], timeout=15)
    assert "gpu:2" in r.stdout and "idle" in r.stdout, r.stdout


def test_profile_on_slurm(cluster, tmp_path):
    t_start = time.monotonic()
    results, local = tmp_path / "results", tmp_path / "local"
    dataset, scenario, seed, run = FAULT

    # 1. Through SLURM, with one unlearning job made to fail and one oracle training scancel'ed mid-run.
    workdir = copy_workflow(Path(tempfile.mkdtemp(dir=tmp_path)))
    first = start(results, tmp_path / "slurm1.log", workdir=workdir, fault=f"{dataset}/{scenario}/{seed}/{run}")
    found = wait_watching(first, cancel_when_running, cluster, results)
    t_first = time.monotonic() - t_start
    assert first.rc not in (124, 137), f"snakemake timed out: {first.log}"
    assert first.rc != 0, "a failed and a cancelled job must make the run fail"
    assert found, "no retrain_oracle job was seen running to cancel"
    assert f"SLURM-job '{found['jobid']}'" in first.text or found["jobid"] in first.text
    assert "Error in rule unlearn" in first.text or "Error in group unlearn" in first.text, first.text[-3000:]
    fault_dir = results / dataset / scenario / f"seed{seed}" / run
    assert not (fault_dir / "run.json").exists()
    assert not (results / "paper/table_uib.tex").exists()
    # --keep-going: everything that depends on neither failure was finished.
    m = re.match(ORACLE_COMMENT, found["comment"])
    cancelled_dir = results / m.group(1) / m.group(2) / f"seed{m.group(3)}" / m.group(4)
    assert not (cancelled_dir / "run.json").exists()
    missing = [d for d in run_dirs(results) if not (d / "run.json").exists()]
    assert fault_dir in missing and cancelled_dir in missing
    done_before = set(run_dirs(results)) - set(missing)

    # SLURM's records: the cancelled job CANCELLED, the fault's group FAILED, the rest COMPLETED.
    records = cluster.records()
    for jobid in first.submitted:
        assert jobid in records, f"job {jobid} has no SLURM record"
    states = {jobid: records[jobid]["JobState"] for jobid in first.submitted}
    assert states[found["jobid"]] == "CANCELLED", states
    assert list(states.values()).count("FAILED") == 1, states
    assert list(states.values()).count("COMPLETED") == len(states) - 2, states

    # 2. The rerun, fault removed: exactly what is missing, nothing that was complete.
    mtimes = {p: p.stat().st_mtime_ns for d in done_before for p in d.iterdir()}
    second = start(results, tmp_path / "slurm2.log", workdir=workdir).wait()
    assert second.rc == 0, second.text[-5000:]
    stats = second.job_stats()
    missing_unlearn = [d for d in missing if d.name not in ("retrain", "retrain_replace", "original")]
    assert stats.get("retrain_oracle", 0) == 1, stats
    assert stats.get("unlearn", 0) == len(missing_unlearn), (stats, missing)
    assert stats.get("baseline", 0) == 0 and stats.get("prepare_experiment", 0) == 0, stats
    changed = [str(p) for p, t in mtimes.items() if p.stat().st_mtime_ns != t]
    assert not changed, f"complete outputs were redone: {changed}"
    for jobid in second.submitted:
        assert cluster.records()[jobid]["JobState"] == "COMPLETED"
    for a in ARTIFACTS:
        assert (results / a).exists(), a
    # The cancelled oracle resumed from its epoch checkpoint (what a requeued, preempted job does).
    if found.get("checkpoint"):
        log = results / "logs" / m.group(4) / f"{m.group(1)}_{m.group(2)}_seed{m.group(3)}.log"
        assert "resumed from" in log.read_text(), log
    t_slurm = time.monotonic() - t_start

    # 3. The same config, locally: same artifacts, same metrics.
    ref = start(local, tmp_path / "local.log", slurm=False, workdir=workdir).wait()
    assert ref.rc == 0, ref.text[-5000:]
    for a in ARTIFACTS:
        assert (local / a).exists(), a
    same_metrics(results, local)

    # Measured numbers, for docs/slurm.md and the CI log.
    grouped = stats.get("unlearn", 0) + stats.get("evaluate_original", 0)
    print(f"\nbring-up {cluster.bringup_seconds:.1f} s; SLURM run 1 {t_first:.0f} s "
          f"({len(first.submitted)} sbatch calls), rerun {t_slurm - t_first:.0f} s "
          f"({len(second.submitted)} sbatch calls for {sum(v for k, v in stats.items() if k != 'all')} jobs, "
          f"{grouped} of them grouped); local run {time.monotonic() - t_start - t_slurm:.0f} s")
    # data, requests, baselines, oracles (bias: retrain and retrain_replace; random: retrain), groups
    expected_first = 2 + 2 + 4 + 6 + math.ceil(12 / GROUP_SIZE)
    assert len(first.submitted) == expected_first, (len(first.submitted), expected_first)


# ------------------------------------------------------------------- the embedded default's shape, one invocation ----
# Every artifact of the default (rule all) that the scaled copy makes: UIB, JiT and Xu & Strohmer tables and figures.
DEFAULT_ARTIFACTS = ["paper/table_uib.tex", "paper/table_jit_full_class.tex", "paper/table_jit_random_n.tex",
                     "paper/table_xs_frontier.tex", "paper/fig_metrics.png", "paper/fig_bias_trace.png",
                     "paper/fig_jit_runtime.png", "paper/fig_jit_entropy_full_class.png", "paper/fig_jit_toy.png",
                     "paper/fig_xs_frontier.png", "paper/fig_xs_mnist_trajectories.png", "paper/fig_xs_barycenter.png",
                     "paper/fig_xs_densities.png", "paper/table_forget_quality_digits_random_n.tex",
                     "paper/fig_ulira_roc_digits_random_n.png", "paper/fig_forget_epsilon_digits_random_n.png",
                     "paper/fig_forget_quality_vs_n_digits_random_n.png",
                     "summary/runs.csv", "summary/summary.csv", "summary/stats.csv"]
PREEMPTED = "digits_c/baseline/seed0/model.pt"  # the baseline of the dataset with the Sparsity runs: it keeps a rewind state
BASELINE_COMMENT = "rule_baseline_wildcards_digits_c_0"


def preempt_baseline(cluster: Cluster, results: Path, found: dict, stop: threading.Event) -> None:
    """scancel the digits_c baseline once its epoch-2 checkpoint is written (after its rewind epoch, 1): the profile's
    retries resubmit it and it must resume from its epoch checkpoint, rewind state included. Epoch k's log line
    comes before its (slowed) end and checkpoint, so "epoch 3/" means the checkpoint holds epoch 2."""
    log = results / "logs/baseline/digits_c_seed0.log"
    while not stop.is_set():
        text = log.read_text() if log.exists() else ""
        if "epoch 3/" in text and (results / f"{PREEMPTED}.epoch").exists():
            for jobid, state, comment in cluster.queue():
                if comment == BASELINE_COMMENT and state == "RUNNING":
                    sh(["timeout", "10", "scancel", jobid], timeout=15)
                    found.update(jobid=jobid, log_then=text)
                    return
        time.sleep(0.3)


def test_the_default_shape_completes_in_one_invocation_and_a_preempted_baseline_resumes(cluster, tmp_path):
    """The embedded default scaled down (tests/slurm/scaled.py: the tune stage, both JiT tables, the Xu & Strohmer
    stage, Sparsity and UIB runs, the population stage at N = 3) through the project's profile: ONE invocation completes every target with rc 0,
    after which `snakemake -n` has nothing to do (before: KeyError after the tune checkpoints, then a second run
    that exited 0 with no tables). The digits_c baseline is scancel'ed mid-training after its rewind epoch; the
    profile's retries resubmit it, it resumes from its epoch checkpoint, and its model and rewind state equal a local
    uninterrupted run's, as do all non-timing metrics."""
    import torch
    import yaml

    sys.path.insert(0, str(HERE))
    from scaled import scaled_default

    t0 = time.monotonic()
    workdir = copy_workflow(Path(tempfile.mkdtemp(dir=tmp_path)))
    results, local = tmp_path / "results", tmp_path / "local"
    config = tmp_path / "scaled.yaml"
    config.write_text(yaml.safe_dump(scaled_default(results)))
    run = start(results, tmp_path / "slurm.log", workdir=workdir, config=config, retries=2, seconds=540,
                slow=PREEMPTED)
    found = wait_watching(run, preempt_baseline, cluster, results)
    t_slurm = time.monotonic() - t0
    assert run.rc not in (124, 137), f"snakemake timed out: {run.text[-3000:]}"
    assert run.rc == 0, run.text[-5000:]
    assert "KeyError" not in run.text
    steps = re.findall(r"(\d+) of (\d+) steps \((\d+)%\) done", run.text)
    assert steps and steps[-1][0] == steps[-1][1] and all(int(done) <= int(total) for done, total, _ in steps), steps
    for artifact in DEFAULT_ARTIFACTS:
        assert (results / artifact).exists(), artifact
    dry = subprocess.run([SNAKEMAKE, "-n", "--configfile", str(config), "--config", f"results={results}"],
                         cwd=workdir, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(workdir / "src")})
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-3000:]

    # the preemption: cancelled after epoch 2, resubmitted by the profile's retries, resumed from its checkpoint
    assert found, "the digits_c baseline was not seen running after its epoch-2 checkpoint to cancel"
    assert cluster.records()[found["jobid"]]["JobState"] == "CANCELLED"
    log = (results / "logs/baseline/digits_c_seed0.log").read_text()
    assert "resumed from" in log and "at epoch 2" in log, log[-2000:]
    assert not list(results.rglob("*.epoch"))

    # the same config locally, uninterrupted: same models, same rewind state, same numbers
    ref = start(local, tmp_path / "local.log", workdir=workdir, config=config, slurm=False, seconds=420).wait()
    assert ref.rc == 0, ref.text[-5000:]
    for rel in (PREEMPTED, "digits_c/baseline/seed0/rewind.pt"):
        a, b = (torch.load(root / rel, weights_only=True)["state_dict"] for root in (results, local))
        assert all(torch.equal(a[k], b[k]) for k in a), rel
    compared = same_metrics(results, local)
    print(f"\ndefault shape on SLURM: one invocation, {steps[-1][1]} steps, {len(run.submitted)} sbatch calls "
          f"(one preempted and resubmitted), {t_slurm:.0f} s; local run {time.monotonic() - t0 - t_slurm:.0f} s; "
          f"{compared} non-timing metric rows equal")
