"""Faults a lab meets when it shares results: untrusted checkpoints, stale epoch checkpoints, a killed
snakemake, resumed timing, file permissions, bad configuration values and damaged data files.

Each test here failed on the code before the fixes (commit 6e22d05) and passes now. The workflow tests run the real
Snakemake workflow on a tiny config (digits, one seed, two methods) in a copy of the repository; every subprocess
has a timeout and is killed by PID in a `finally`.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

from unlearnbench.core.errors import ConfigError, InputFileError

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TIMING_METRICS = {"ut_seconds", "ut_device_seconds", "ut_minutes"}

pytestmark = pytest.mark.timeout(600)

# The README's command, with a config file: what a user types, and types again after a crash.
TINY = {
    "results": "results",
    "seeds": 1,
    "datasets": {"digits": {"source": "digits", "scenarios": ["random"], "colour": {"enabled": False},
                            "model": {"arch": "small_cnn", "width": 8},
                            "train": {"epochs": 30, "batch_size": 128, "lr": 0.05}}},
    "scenarios": {"random": {"fraction": 0.1}},
    # a Sparsity run (its baseline keeps the rewind state; sparse_baseline) and a UIB run, as in the default
    "methods": {"finetune": {"method": "finetune", "epochs": 2, "lr": 0.02},
                "gradient_ascent": {"method": "gradient_ascent", "epochs": 1, "lr": 0.003},
                "sparsity_finetune": {"method": "finetune", "setting": "sparsity", "setting_knobs": {"sparsity": 0.9},
                                      "epochs": 1, "lr": 0.02},
                "uib_finetune": {"method": "finetune", "setting": "uib",
                                 "setting_knobs": {"beta": 0.01, "tau": 0.1, "sampling": "bernoulli"},
                                 "epochs": 1, "lr": 0.02}},
    "sparse_baseline": {"epochs": 10},
}
COMMAND = ["--cores", "2", "--configfile", "tiny.yaml"]
# Long training (minutes): a job that outlived a killed snakemake would still be running when the test looks.
LONG = json.loads(json.dumps(TINY))
LONG["datasets"]["digits"]["train"]["epochs"] = 3000
# every job process gone within this after kill -9 of snakemake (measured: 1-2 s on a quiet machine, 4.7-11.9 s on
# 2 cores at load average 15; jobs of the code before ran on for minutes)
STOP_SECONDS = 20


# ------------------------------------------------------------------------------------------------- helpers

def copy_workflow(dest: Path, config: dict = TINY) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, dest / name)
    for name in ("rules", "workflow_scripts", "config", "envs", "report", "profiles"):
        shutil.copytree(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "tiny.yaml").write_text(yaml.safe_dump(config))
    return dest


def _env(workdir: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(workdir / "src")}


def start(workdir: Path, *args: str) -> subprocess.Popen:
    """snakemake in `workdir` under umask 022, its output to a file (a pipe nobody reads could block it)."""
    out = open(workdir / f"snakemake.{time.monotonic_ns()}.out", "w+")
    proc = subprocess.Popen([*SNAKEMAKE, *args], cwd=workdir, env=_env(workdir), stdout=out,
                            stderr=subprocess.STDOUT, text=True, umask=0o022)
    proc.output = out
    return proc


def output(proc: subprocess.Popen) -> str:
    proc.output.seek(0)
    return proc.output.read()


def finish(proc: subprocess.Popen, timeout: float) -> str:
    try:
        proc.wait(timeout=timeout)
        return output(proc)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    proc.output.close()


def snakemake(workdir: Path, *args: str, timeout: float = 300) -> tuple[int, str]:
    proc = start(workdir, *args)
    out = finish(proc, timeout)
    return proc.returncode, out


def processes_of(workdir: Path) -> list[tuple[int, str]]:
    """Live processes (other than this one) working in `workdir` or naming it on their command line: snakemake,
    the job server and its handlers and workers (their cwd), the per-job script clients (.snakemake/scripts/...)."""
    found = []
    target = str(workdir)
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone, a zombie, or not ours
            continue
        if cwd == target or cwd.startswith(target + os.sep) or target in cmd:
            found.append((pid, cmd.strip()[:160]))
    return found


def kill_leftovers(workdir: Path) -> None:
    for pid, _ in processes_of(workdir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"snakemake exited before {what}: {output(proc)[-3000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def training_started(workdir: Path) -> bool:
    """A baseline or oracle job has finished at least one epoch (its epoch checkpoint exists)."""
    return any((workdir / "results").glob("digits/**/model.pt.epoch"))


def baseline_past_rewind(workdir: Path) -> bool:
    """The baseline (which keeps the sparse baseline's rewind state, epoch 1 at 30 epochs) has checkpointed epoch 2
    or later: a kill now used to lose rewind.pt for good (docs/reliability.md)."""
    log = workdir / "results/logs/baseline/digits_seed0.log"
    return log.exists() and "epoch 3/" in log.read_text() and training_started(workdir)


def results_files(workdir: Path) -> list[Path]:
    root = workdir / "results"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# ------------------------------------------------------------------------------------------------- workflow runs

@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The tiny workflow run once, uninterrupted, under umask 022. While it trains, the same command started a
    second time is refused by Snakemake's lock (the stale-lock removal never touches a live run's lock)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("uninterrupted"))
    first = start(workdir, *COMMAND)
    try:
        wait_for(lambda: training_started(workdir), 240, "training to start", first)
        code, second = snakemake(workdir, *COMMAND, timeout=120)
        assert code != 0 and ("LockException" in second or "cannot be locked" in second), second[-2000:]
        out = finish(first, 300)
        assert first.returncode == 0, out[-4000:]
    finally:
        stop(first)
        kill_leftovers(workdir)
    return workdir


@pytest.mark.slow
def test_every_output_file_is_readable_by_the_group_and_others_under_umask_022(uninterrupted):
    files = results_files(uninterrupted)
    assert len(files) > 30
    private = [str(p.relative_to(uninterrupted)) for p in files if p.stat().st_mode & 0o777 != 0o644]
    assert not private, f"{len(private)} of {len(files)} files are not 0644: {private[:10]}"
    dirs = [p for p in (uninterrupted / "results").rglob("*") if p.is_dir()]
    assert all(p.stat().st_mode & 0o777 == 0o755 for p in dirs)


def _same_results(a: Path, b: Path) -> None:
    """Every non-timing number, model and output array of two runs is identical."""
    import pandas as pd
    import torch

    runs = [pd.read_csv(w / "results/summary/runs.csv") for w in (a, b)]
    runs = [r[~r.metric.isin(TIMING_METRICS)].sort_values(list(r.columns[:-1])).reset_index(drop=True) for r in runs]
    pd.testing.assert_frame_equal(runs[0], runs[1], check_exact=True)
    models = sorted(p.relative_to(a) for p in (a / "results").rglob("*.pt"))
    assert len(models) >= 4 and models == sorted(p.relative_to(b) for p in (b / "results").rglob("*.pt"))
    for rel in models:
        sa, sb = (torch.load(w / rel, weights_only=True)["state_dict"] for w in (a, b))
        assert all(torch.equal(sa[k], sb[k]) for k in sa), rel
    for rel in sorted(p.relative_to(a) for p in (a / "results").rglob("outputs.npz")):
        with np.load(a / rel) as za, np.load(b / rel) as zb:
            assert all(np.array_equal(za[k], zb[k]) for k in za.files), rel


@pytest.mark.slow
def test_sigkill_of_snakemake_leaves_no_job_running_and_the_same_command_finishes_identically(uninterrupted,
                                                                                            tmp_path):
    """kill -9 of snakemake while training runs (the baseline past the sparse baseline's rewind epoch, in a config
    with Sparsity and UIB runs): within seconds no job process survives (job server, handlers, workers, script
    clients); then the same command, typed again, removes the stale lock, redoes the incomplete jobs (training
    resumes from its epoch checkpoint, the rewind state with it) and yields the uninterrupted run's numbers and
    models, rewind.pt and the sparse baseline included."""
    workdir = copy_workflow(tmp_path / "killed")
    run = start(workdir, *COMMAND)
    try:
        wait_for(lambda: baseline_past_rewind(workdir), 240, "the baseline to pass its rewind epoch", run)
        jobs = [p for p in processes_of(workdir) if p[0] != run.pid]
        assert any("unlearnbench.runtime.jobserver" in cmd for _, cmd in jobs), jobs
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        t0 = time.monotonic()
        wait_for(lambda: not processes_of(workdir), STOP_SECONDS, "every job process to stop after kill -9")
        stopped_after = time.monotonic() - t0
        assert list((workdir / ".snakemake/locks").glob("*.lock")), "the killed run left no lock (test premise)"
        code, out = snakemake(workdir, *COMMAND, timeout=300)
        assert code == 0, out[-4000:]
    finally:
        stop(run)
        kill_leftovers(workdir)
    assert "removed the lock left" in out and "resumed from" in "".join(
        p.read_text() for p in (workdir / "results/logs").rglob("*.log"))
    leftovers = [p for p in (workdir / "results").rglob("*") if p.name.endswith((".part", ".epoch", ".new"))]
    assert not leftovers, leftovers
    _same_results(uninterrupted, workdir)
    print(f"job processes gone {stopped_after:.1f} s after kill -9 of snakemake")


@pytest.mark.slow
@pytest.mark.parametrize("job_server", [True, False])
def test_no_job_outlives_a_killed_snakemake(tmp_path, job_server):
    """kill -9 of snakemake during a training of minutes: every job process (job server, handler, worker, script
    client; or, with job_server: false, the job's own interpreter) stops within seconds, logging why (before: the
    training ran on to its end as an orphan and collided with the rerun)."""
    workdir = copy_workflow(tmp_path / "orphans", LONG)
    run = start(workdir, *COMMAND, "--config", f"job_server={job_server}")
    try:
        wait_for(lambda: training_started(workdir), 240, "training to start", run)
        jobs = [cmd for pid, cmd in processes_of(workdir) if pid != run.pid]
        assert any("unlearnbench.runtime.jobserver" in cmd for cmd in jobs) == job_server, jobs
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        t0 = time.monotonic()
        wait_for(lambda: not processes_of(workdir), STOP_SECONDS, "every job process to stop after kill -9")
        print(f"job_server={job_server}: {len(jobs)} job processes gone {time.monotonic() - t0:.1f} s after kill -9")
    finally:
        stop(run)
        kill_leftovers(workdir)
    logs = "".join(p.read_text() for p in (workdir / "results/logs").rglob("*.log"))
    assert "stopped by SIGTERM" in logs
    assert not [p for p in (workdir / "results").rglob("*") if p.name.endswith(".part")]


# ------------------------------------------------------------------------------------------------- bad configs

def _config(mutate) -> str:
    config = json.loads(json.dumps(TINY))
    # bias_strength 1: every training image in its class colour, so the planned pattern counts are exact
    config["datasets"]["digits_c"] = {"source": "digits", "scenarios": ["bias"], "colour": {"bias_strength": 1.0},
                                      "model": {"arch": "small_cnn", "width": 8}, "train": {"epochs": 2}}
    config["scenarios"]["bias"] = {"pattern_fraction": 0.1}
    mutate(config)
    return yaml.safe_dump(config)  # NaN and inf become YAML's .nan and .inf


def _add_scenario(config, name, options, dataset="digits"):
    config["scenarios"][name] = options
    config["datasets"][dataset]["scenarios"].append(name)


TINY_TEXT = yaml.safe_dump(TINY)


def _after_seeds_line() -> int:
    """The 1-based line of the first YAML token after `seeds:` in the embedded config.yaml (the YAML-error case
    breaks the `seeds:` line; the parser reports the error at the next token, past comment lines)."""
    lines = (ROOT / "config.yaml").read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("seeds:"))
    return next(i for i in range(index + 1, len(lines))
                if lines[i].strip() and not lines[i].lstrip().startswith("#")) + 1


# (case, config text or None for the embedded config.yaml, the text the error must contain)
BAD_CONFIGS = [
    ("training lr .nan", _config(lambda c: c["datasets"]["digits"]["train"].update(lr=float("nan"))),
     "datasets.digits.train.lr: nan is not a finite number"),
    ("method lr .nan", _config(lambda c: c["methods"]["finetune"].update(lr=float("nan"))),
     "methods.finetune.lr"),
    ("weight_decay .inf", _config(lambda c: c["datasets"]["digits"]["train"].update(weight_decay=float("inf"))),
     "datasets.digits.train.weight_decay: inf is not a finite number"),
    ("val_fraction .nan", _config(lambda c: c["datasets"]["digits"].update(split={"val_fraction": float("nan")})),
     "datasets.digits.split.val_fraction"),
    ("results ''", _config(lambda c: c.update(results="")), "results: '' is not a usable output folder"),
    ("results /", _config(lambda c: c.update(results="/")), "results: '/' is not a usable output folder"),
    ("results src", _config(lambda c: c.update(results="src")), "results: 'src' is inside the repository's src/"),
    ("results src/unlearnbench", _config(lambda c: c.update(results="src/unlearnbench")),
     "results: 'src/unlearnbench' is inside the repository's src/"),
    ("results config", _config(lambda c: c.update(results="config")),
     "results: 'config' is inside the repository's config/"),
    ("results tests/x", _config(lambda c: c.update(results="tests/x")),
     "results: 'tests/x' is inside the repository's tests/"),
    ("results with a brace", _config(lambda c: c.update(results="r_{seed}")), "results: 'r_{seed}' holds a brace"),
    ("worst_case n beyond its class", _config(lambda c: _add_scenario(c, "worst_case", {"forget_class": 3, "n": 500})),
     "scenarios.worst_case.n: 500 samples of class 3, and dataset digits will have"),
    ("random_n tuning request beside n=700", _config(lambda c: (
        _add_scenario(c, "random_n", {"n": 700}),
        c["methods"].update(tuned_ft={"method": "finetune", "epochs": 1, "scenarios": ["random_n"],
                                      "tune": {"search": "grid", "space": {"lr": [0.01, 0.02]}}}))),
     "scenarios.random_n.tune_request: on dataset digits, a tuning request of 700 training images disjoint from"),
    ("train_size 20", _config(lambda c: c["datasets"]["digits"].update(split={"train_size": 20})),
     "datasets.digits.split.train_size: 20 leaves scenario random 1 training images to forget"),
    ("palette of 3 colours", _config(lambda c: c["datasets"]["digits_c"].update(
        colour={"palette": [[255, 0, 0], [0, 255, 0], [0, 0, 255]]})),
     "datasets.digits_c.colour.palette: 3 colours for the 10 classes"),
    ("pattern_fraction 1.0", _config(lambda c: c["scenarios"]["bias"].update(pattern_fraction=1.0)),
     "scenarios.bias.pattern_fraction"),
    ("pattern_fraction 0.9 on 40 images", _config(lambda c: (c["scenarios"]["bias"].update(pattern_fraction=0.9),
                                                            c["datasets"]["digits_c"].update(split={"train_size": 40}))),
     "The smallest datasets.digits_c.split.train_size that works here is 57"),
    ("random_n of 3", _config(lambda c: _add_scenario(c, "few", {"type": "random_n", "n": 3})),
     "scenarios.few: on dataset digits, scenario few has 3 training images to forget"),
    ("full_class 12 of 10", _config(lambda c: _add_scenario(c, "one", {"type": "full_class", "forget_class": 12})),
     "scenarios.one.forget_class: 12 is not a class of dataset digits"),
    ("background colour on RGB", _config(lambda c: c["datasets"].update(
        cifar={"source": "cifar10", "scenarios": ["bias"]})), "datasets.cifar.colour.mode"),
    ("population of 2 models", _config(lambda c: c.update(population={"scenarios": ["random"], "size": 2})),
     "population.size"),
    ("population method not a run", _config(lambda c: c.update(population={"scenarios": ["random"],
                                                                          "methods": ["negrad"]})),
     "population.methods: 'negrad' is not a run under `methods`"),
    ("population scenario not configured", _config(lambda c: c.update(population={"scenarios": ["full_class"]})),
     "population.scenarios: 'full_class' is not a configured scenario"),
    ("unknown top-level key", _config(lambda c: c.update(colour_mode="patch")), "colour_mode: unknown key"),
    ("key given twice", TINY_TEXT + "seeds: 2\n", "tiny.yaml, line"),
    ("YAML error in config.yaml", None, f"config.yaml, line {_after_seeds_line()}, column"),
    ("YAML error in --configfile", TINY_TEXT.replace("seeds: 1", "seeds: [1, 2"),
     "Config file is not valid JSON or YAML"),  # Snakemake's own message (the file is read before our code)
]


@pytest.fixture(scope="module")
def config_workdirs(tmp_path_factory):
    base = copy_workflow(tmp_path_factory.mktemp("configs") / "wf")
    return base


@pytest.mark.slow
def test_every_bad_config_stops_before_any_job_naming_its_key(config_workdirs, tmp_path):
    """Each case: `snakemake -n` on a copy of the workflow fails, names the key (or file and line) in at most a few
    lines (no config dump), and leaves no results folder. Run two at a time (2 cores)."""
    def one(case):
        name, text, expected = case
        workdir = tmp_path / name.replace(" ", "_").replace("'", "").replace("/", "slash").replace(".", "")
        shutil.copytree(config_workdirs, workdir)
        if text is None:  # a syntax error in the embedded default
            lines = (workdir / "config.yaml").read_text().splitlines()
            index = next(i for i, line in enumerate(lines) if line.startswith("seeds:"))
            lines[index] = "seeds: [1, 2"
            (workdir / "config.yaml").write_text("\n".join(lines) + "\n")
            args = ["-n", "--cores", "2"]
        else:
            (workdir / "tiny.yaml").write_text(text)
            args = ["-n", *COMMAND]
        code, out = snakemake(workdir, *args, timeout=180)
        left = results_files(workdir) + ([workdir / "results"] if (workdir / "results").exists() else [])
        return name, code, out, left

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(one, BAD_CONFIGS))
    problems = []
    for (name, _, expected), (_, code, out, left) in zip(BAD_CONFIGS, outcomes):
        error_lines = [line for line in out.splitlines() if not line.startswith("  File ")
                       and "Using workflow specific profile" not in line]
        if code == 0 or expected not in out or left or len(error_lines) > 6:
            problems.append(f"{name}: rc={code}, expected {expected!r}, left {left}, output:\n{out[-1500:]}")
    assert not problems, "\n\n".join(problems)
    print(f"bad configs: {len(BAD_CONFIGS)} tried, {sum(c != 0 for _, c, _, _ in outcomes)} stopped before any "
          f"job, {sum(len(l) for _, _, _, l in outcomes)} files left behind")


def test_the_validation_command_names_file_and_line_of_a_yaml_error(tmp_path):
    """Snakemake reads a --configfile before the workflow's code runs, and its message names neither file nor line;
    `python -m unlearnbench.config.validation FILE` (README) does, with every other config-time check."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY_TEXT.replace("seeds: 1", "seeds: [1, 2"))
    good = tmp_path / "good.yaml"
    good.write_text(TINY_TEXT)
    out = subprocess.run([sys.executable, "-m", "unlearnbench.config.validation", str(bad), str(good)],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 1
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "seeds" in text)
    assert f"{bad}, line {line + 1}, column" in out.stderr or f"{bad}, line {line}, column" in out.stderr, out.stderr
    assert f"{good}: ok" in out.stdout


def test_schema_defaults_are_filled_exactly_as_snakemake_fills_them():
    """validation.validate replaces snakemake.utils.validate: on the default and every shipped config, the filled
    configs are identical."""
    import copy

    from snakemake.utils import validate as snakemake_validate

    from unlearnbench.config import validation

    schema = ROOT / "config" / "schema.yaml"
    paths = [ROOT / "config.yaml", *sorted(p for p in (ROOT / "config").glob("*.yaml") if p.name != "schema.yaml")]
    assert len(paths) >= 5
    for path in paths:
        config = yaml.safe_load(path.read_text())
        theirs, ours = copy.deepcopy(config), copy.deepcopy(config)
        validation.validate(ours, schema)
        try:
            snakemake_validate(theirs, str(schema))
        except AttributeError:
            # snakemake's default filling cannot descend into a part set to null (config/xs_mnist.yaml's
            # `xs: {tabular: null, ...}`); ours keeps the null and fills everything else
            assert any(v is None for v in (config.get("xs") or {}).values()), path
            assert all(ours["xs"][k] is None for k, v in config["xs"].items() if v is None), path
            continue
        assert ours == theirs, path


def test_a_schema_error_is_one_paragraph_naming_the_key_and_what_is_allowed():
    from unlearnbench.config import validation

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["datasets"]["digits"]["split"]["val_fraction"] = 1.5
    with pytest.raises(ConfigError) as err:
        validation.validate(config, ROOT / "config/schema.yaml")
    message = str(err.value)
    assert message.startswith("datasets.digits.split.val_fraction: got 1.5; allowed: a number > 0 and < 1")
    assert "\n" not in message and len(message) < 400


def test_planned_sizes_equal_the_built_experiment_and_the_size_checks_match_the_jobs(digits_source):
    """The config-time sizes (registry class counts + the split rule) equal what prepare_experiment builds, and the
    smallest train_size the config check accepts is exactly the one the request job and the metrics accept."""
    from unlearnbench.config.plan import check_dataset
    from unlearnbench.datasets import DATASETS, load_prepared
    from unlearnbench.core.errors import SizeError
    from unlearnbench.datasets.experiment import ExperimentData, build_experiment, planned_sizes
    from unlearnbench.evaluation.metrics import mia_loss_cv
    from unlearnbench.scenarios import make_request

    raw = load_prepared(digits_source)
    assert np.bincount(raw["y_train"]).tolist() == list(DATASETS["digits"].class_counts["train"])
    for split in ({}, {"train_size": 20}, {"train_size": 1346}, {"val_fraction": 0.5, "test_fraction": 0.9},
                  {"train_size": 55, "test_size": 21}, {"val_fraction": 0.9, "train_size": 445}):
        full = {"val_fraction": 0.1, "test_fraction": 0.25, **split}
        arrays, _ = build_experiment(raw, split=full, colour={}, data_seed=0)
        planned = planned_sizes("digits", {"source": "digits", "split": full})
        for part in ("train", "val", "test"):
            assert np.bincount(arrays[f"y_{part}"], minlength=10).tolist() == getattr(planned, part).tolist(), split

    colour = {"enabled": True, "palette": "tab10", "mode": "background", "bias_strength": 1.0, "patch_size": None}
    for scenario, options, colour_cfg, smallest in (("random", {"fraction": 0.1}, {}, 55),
                                                    ("bias", {"pattern_fraction": 0.1}, colour, 26),
                                                    ("bias", {"pattern_fraction": 0.9}, colour, 57)):
        def config(size):
            return {"datasets": {"d": {"source": "digits", "split": {"val_fraction": 0.1, "test_fraction": 0.25,
                                                                     "train_size": size},
                                       "colour": colour_cfg or {"enabled": False}, "scenarios": [scenario]}},
                    "scenarios": {scenario: options}}

        with pytest.raises(SizeError, match=f"that works here is {smallest}"):
            check_dataset(config(20), "d")
        check_dataset(config(smallest), "d")
        for size, works in ((smallest - 1, False), (smallest, True)):
            full = config(size)["datasets"]["d"]["split"]
            data = ExperimentData(*build_experiment(raw, split=full, colour=colour_cfg, data_seed=0))
            try:
                request = make_request(scenario, data, {"type": scenario, **options}, 0)
                mia_loss_cv(np.ones(len(request.forget_idx)), np.ones(len(data.labels("test"))), seed=0)
                ok = True
            except ValueError:
                ok = False
            assert ok == works, (scenario, options, size)


def test_registry_class_counts_sum_to_the_split_sizes():
    from unlearnbench.datasets import DATASETS

    for spec in DATASETS.values():
        for split, size in spec.split_sizes.items():
            assert sum(spec.class_counts[split]) == size, (spec.name, split)
            assert len(spec.class_counts[split]) == len(spec.class_names)
            if spec.coarse_class_names:
                assert sum(spec.coarse_class_counts[split]) == size
                assert len(spec.coarse_class_counts[split]) == len(spec.coarse_class_names)
    debian = Path("/usr/share/datasets/fashion-mnist")
    if debian.exists():  # the Debian copy config/uib_fashion_mnist.yaml uses
        import gzip

        for split, name in (("train", "train"), ("test", "t10k")):
            labels = np.frombuffer(gzip.open(debian / f"{name}-labels-idx1-ubyte.gz").read()[8:], np.uint8)
            assert np.bincount(labels).tolist() == list(DATASETS["fashion_mnist"].class_counts[split])


# ------------------------------------------------------------------------------------------------- checkpoints

class _RunsCode:
    """A pickle whose loading would run code (writes a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Crash(BaseException):
    """Stands in for a kill right after an epoch checkpoint was written."""


def _crash_after(monkeypatch, epoch: int) -> None:
    from unlearnbench.nn import checkpoint

    save = checkpoint.save_epoch

    def save_then_crash(path, state, fingerprint_):
        save(path, state, fingerprint_)
        if state["epoch"] == epoch:
            raise _Crash(epoch)

    monkeypatch.setattr(checkpoint, "save_epoch", save_then_crash)


def _training(setup, **changes) -> dict:
    training = json.loads(json.dumps(setup.training))
    training["train"].update(epochs=changes.pop("epochs", 8))
    training["model"].update(width=changes.pop("width", 8))
    return training


def _baseline(setup, path: Path, training: dict, log: Path) -> dict:
    from unlearnbench.steps import training as jobs

    return jobs.train_baseline(experiment=str(setup.data), model=str(path), training=training, seed=0, device="cpu",
                               threads=1, log=str(log))


def _weights(path: Path) -> dict:
    import torch

    return torch.load(path, weights_only=True)["state_dict"]


def test_a_code_running_epoch_checkpoint_is_refused_by_the_training_job_and_runs_nothing(random_setup, tmp_path):
    """A `model.pt.epoch` that pickles `os.system` (a shared results folder): the baseline job refuses it, naming the
    file, executes nothing and writes no model."""
    import torch

    from unlearnbench.nn.checkpoint import CheckpointError

    marker = tmp_path / "executed"
    model = tmp_path / "model.pt"
    epoch = Path(str(model) + ".epoch")
    for write in (lambda: torch.save({"format": "unlearnbench-epoch-checkpoint-v2", "x": _RunsCode(marker)}, epoch),
                  lambda: epoch.write_bytes(pickle.dumps(_RunsCode(marker)))):
        write()
        with pytest.raises(CheckpointError, match=r"model\.pt\.epoch: refused to load.*nothing in it was executed"):
            _baseline(random_setup, model, _training(random_setup), tmp_path / "log")
        assert not marker.exists() and not model.exists()


@pytest.mark.parametrize("change", [{"epochs": 5}, {"width": 12}])
def test_a_stale_epoch_checkpoint_is_discarded_after_a_recipe_or_width_change(random_setup, tmp_path, monkeypatch,
                                                                              change):
    """The baseline job crashes at epoch 4 of 8; the config then changes (epochs 8 -> 5, or width 8 -> 12). The rerun
    discards the epoch checkpoint with a log line naming it and trains from scratch: its model equals an
    uninterrupted run of the new recipe (before: an 8-epoch-recipe model resumed at epoch 4 was accepted, or the
    job failed on a raw size mismatch on every rerun)."""
    model, log = tmp_path / "model.pt", tmp_path / "job.log"
    with monkeypatch.context() as m:
        _crash_after(m, 4)
        with pytest.raises(_Crash):
            _baseline(random_setup, model, _training(random_setup), log)
    assert Path(str(model) + ".epoch").exists() and not model.exists()
    meta = _baseline(random_setup, model, _training(random_setup, **change), log)
    assert f"discarding stale epoch checkpoint {model}.epoch" in log.read_text()
    assert [h["epoch"] for h in meta["history"]] == list(range(1, _training(random_setup, **change)["train"]["epochs"] + 1))
    reference = tmp_path / "reference.pt"
    _baseline(random_setup, reference, _training(random_setup, **change), tmp_path / "reference.log")
    a, b = _weights(model), _weights(reference)
    assert all(a[k].shape == b[k].shape and (a[k] == b[k]).all() for k in a)
    assert not Path(str(model) + ".epoch").exists()


def test_a_baseline_killed_after_its_rewind_epoch_resumes_and_writes_the_same_rewind_state(random_setup, tmp_path,
                                                                                          monkeypatch):
    """A config with a Sparsity run: the baseline also saves its epoch-2 state (the sparse baseline's rewind point).
    Killed at epoch 4 of 8 (Snakemake then deletes the incomplete job's outputs, rewind.pt among them), the rerun
    resumes from the epoch checkpoint, which carries the rewind state, and writes the same model and the same rewind
    state as an uninterrupted run (before: every rerun failed with 'the epoch-1 state was not saved')."""
    from unlearnbench.steps import training as jobs

    def baseline(tag):
        return jobs.train_baseline(experiment=str(random_setup.data), model=str(tmp_path / f"{tag}.pt"),
                                   training=_training(random_setup), seed=0, device="cpu", threads=1,
                                   rewind=str(tmp_path / f"{tag}.rewind.pt"), rewind_epoch=2,
                                   log=str(tmp_path / f"{tag}.log"))

    with monkeypatch.context() as m:
        _crash_after(m, 4)
        with pytest.raises(_Crash):
            baseline("killed")
    assert Path(tmp_path / "killed.pt.epoch").exists()
    assert not (tmp_path / "killed.rewind.pt").exists() and not (tmp_path / "killed.pt").exists()
    baseline("killed")
    assert "resumed from" in (tmp_path / "killed.log").read_text()
    baseline("reference")
    for name in ("pt", "rewind.pt"):
        a, b = _weights(tmp_path / f"killed.{name}"), _weights(tmp_path / f"reference.{name}")
        assert all(torch_equal(a[k], b[k]) for k in a), name
    import torch

    meta = torch.load(tmp_path / "killed.rewind.pt", weights_only=True)["meta"]
    assert meta["epoch"] == 2 and meta["rewind_of"] == 8
    assert not Path(tmp_path / "killed.pt.epoch").exists()


def torch_equal(a, b) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.equal(a, b))


def test_a_code_change_between_a_crash_and_the_rerun_trains_from_scratch(random_setup, tmp_path, monkeypatch):
    """The epoch checkpoint is bound to the training code's hash as well as the recipe: after a change to the
    training code, the rerun discards it (naming it) instead of resuming the old code's state."""
    from unlearnbench.steps import training as jobs

    model, log = tmp_path / "model.pt", tmp_path / "job.log"
    with monkeypatch.context() as m:
        _crash_after(m, 4)
        with pytest.raises(_Crash):
            _baseline(random_setup, model, _training(random_setup), log)
    monkeypatch.setattr(jobs, "TRAINING_CODE", lambda: "a-changed-training-code")
    meta = _baseline(random_setup, model, _training(random_setup), log)
    assert f"discarding stale epoch checkpoint {model}.epoch" in log.read_text()
    assert [h["epoch"] for h in meta["history"]] == list(range(1, 9))


def test_a_resumed_oracle_reports_its_whole_training_time(random_setup, tmp_path, monkeypatch):
    """A retrain oracle crashed after epoch 9 of 12 and resumed: run.json's ut_seconds counts both segments (the
    seconds recorded up to epoch 9 plus at most the resumed job's wall time; before, only the last 3 epochs), and
    the weights are identical to an uninterrupted run's."""
    from unlearnbench.steps import training as jobs

    def oracle(tag):
        return jobs.train_oracle(experiment=str(random_setup.data), request=str(random_setup.request),
                                 model=str(tmp_path / f"{tag}.pt"), run=str(tmp_path / f"{tag}.json"),
                                 outputs=str(tmp_path / f"{tag}.npz"), training=_training(random_setup, epochs=12),
                                 identity={"dataset": "d", "scenario": "random", "seed": 0}, seed=0, device="cpu",
                                 threads=1, log=str(tmp_path / f"{tag}.log"))

    full = oracle("full")
    with monkeypatch.context() as m:
        _crash_after(m, 9)
        with pytest.raises(_Crash):
            oracle("resumed")
    import torch

    before = torch.load(tmp_path / "resumed.pt.epoch", weights_only=True)["seconds"]
    t0 = time.perf_counter()
    resumed = oracle("resumed")
    wall = time.perf_counter() - t0
    assert "resumed from" in (tmp_path / "resumed.log").read_text()
    recorded = json.loads((tmp_path / "resumed.json").read_text())["info"]["ut_seconds"]
    assert recorded == resumed["ut_seconds"]
    assert before < recorded < before + wall, (before, recorded, wall)
    assert 0.5 < recorded / full["ut_seconds"] < 2.0, (recorded, full["ut_seconds"])
    a, b = _weights(tmp_path / "full.pt"), _weights(tmp_path / "resumed.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_diverging_training_fails_the_job_and_saves_no_model(random_setup, tmp_path):
    """lr 1e30: the loss becomes NaN/inf; the baseline job fails with a clear error instead of saving a NaN model
    as a success (before, every downstream job then blamed the method)."""
    from unlearnbench.nn.engine import DivergedError

    training = _training(random_setup)
    training["train"]["lr"] = 1e30
    model = tmp_path / "model.pt"
    with pytest.raises(DivergedError, match=r"training diverged: the loss became (nan|inf) in epoch \d+/8.*no model "
                                            r"was saved.*train\.lr"):
        _baseline(random_setup, model, training, tmp_path / "log")
    assert not model.exists()


# ------------------------------------------------------------------------------------------------- data files

def test_every_damaged_data_file_is_named_with_the_fix(random_setup, tmp_path):
    """Corrupt experiment data, forget request, run outputs, run record, runs table, checkpoint: each reader's error
    names the file and says to delete it and rerun (before: 'File is not a zip file', path nowhere)."""
    import torch

    from unlearnbench.artifacts import report
    from unlearnbench import scenarios
    from unlearnbench.artifacts.uib import tables
    from unlearnbench.steps import training
    from unlearnbench.nn.checkpoint import CheckpointError
    from unlearnbench.datasets.experiment import ExperimentData

    s = random_setup
    not_zip = tmp_path / "experiment.npz"
    not_zip.write_bytes(b"not a zip")
    shutil.copy(s.data.with_suffix(".json"), tmp_path / "experiment.json")
    cases = []

    def expect(error, path, call):
        with pytest.raises(error) as err:
            call()
        assert str(path) in str(err.value) and "rerun" in str(err.value), str(err.value)
        cases.append(path)

    expect(InputFileError, not_zip, lambda: scenarios.prepare_request(
        experiment=str(not_zip), request=str(tmp_path / "r.npz"), definition=str(tmp_path / "r.json"),
        scenario="random", options={"type": "random", "fraction": 0.1}, data_seed=0))
    bad_request = tmp_path / "random.npz"
    np.savez(bad_request, something_else=np.arange(3))  # a valid .npz, but not a request
    shutil.copy(s.request.with_suffix(".json"), tmp_path / "random.json")
    expect(InputFileError, bad_request, lambda: training.train_oracle(
        experiment=str(s.data), request=str(bad_request), model=str(tmp_path / "o.pt"), run=str(tmp_path / "o.json"),
        outputs=str(tmp_path / "o.npz"), training=_training(s), identity={}, seed=0, device="cpu", threads=1,
        log=str(tmp_path / "log")))
    run_json, outputs = tmp_path / "oracle.json", tmp_path / "oracle_outputs.npz"
    shutil.copy(s.root / "oracle.json", run_json)
    outputs.write_bytes((s.root / "oracle_outputs.npz").read_bytes()[:200])  # truncated
    summary = dict(csv=str(tmp_path / "runs.csv"), parquet=str(tmp_path / "runs.parquet"),
                   traces=str(tmp_path / "traces.csv"))
    expect(InputFileError, outputs, lambda: report.aggregate(runs=[str(run_json)], outputs=[str(outputs)], **summary))
    shutil.copy(s.root / "oracle_outputs.npz", outputs)
    run_json.write_text('{"identity": ')
    expect(InputFileError, run_json, lambda: report.aggregate(runs=[str(run_json)], outputs=[str(outputs)], **summary))
    runs_csv = tmp_path / "runs.csv"
    runs_csv.write_text("")
    expect(InputFileError, runs_csv, lambda: report.write_statistics(
        runs=str(runs_csv), summary=str(tmp_path / "s.csv"), stats=str(tmp_path / "t.csv"), text=str(tmp_path / "s.md")))
    summary_csv = tmp_path / "summary.csv"
    summary_csv.write_bytes(b"\xff\xfe\x00garbage")
    expect(InputFileError, summary_csv, lambda: tables.uib_table(summary=str(summary_csv), table=str(tmp_path / "t.tex"),
                                                                 labels={}, scenarios={}))
    model = tmp_path / "baseline.pt"
    model.write_bytes(s.baseline.read_bytes()[:1000])
    expect(CheckpointError, model, lambda: training.load_model(model, ExperimentData.load(s.data), torch.device("cpu")))
    assert len(cases) == 7


# ------------------------------------------------------------------------------------------------- processes, locks

def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return True  # a zombie: dead, waiting for its parent to collect it
        time.sleep(0.05)
    return False


def test_the_job_server_stops_its_running_jobs_when_snakemake_is_killed(tmp_path):
    """A stand-in for snakemake starts the job server; a client runs a job that would sleep 10 minutes; kill -9 of
    the stand-in: the server, the handler, the worker and the client are all gone within seconds (before: the
    server exited and the worker slept on)."""
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{tests}"}
    info = tmp_path / "server.json"
    parent = subprocess.Popen(
        [sys.executable, "-c", "import json, sys, time; from unlearnbench.runtime import jobserver; "
         "s = jobserver.start(preload=('unlearnbench.runtime.workflow',)); "
         f"open({str(info)!r}, 'w').write(json.dumps([s.pid, s.address])); time.sleep(600)"], env=env)
    client = None
    try:
        wait_for(lambda: info.exists() and info.read_text(), 60, "the job server")
        server, address = json.loads(info.read_text())
        pid_file = tmp_path / "worker.pid"
        client = subprocess.Popen(
            [sys.executable, "-c", "import sys; from unlearnbench.runtime import jobserver; sys.exit(jobserver.submit("
             f"{address!r}, 'jobserver_targets:sleep_forever', {{'pid_path': {str(pid_file)!r}}}, None))"], env=env)
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), 60, "the worker")
        worker = int(pid_file.read_text())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        for pid, what in ((worker, "worker"), (server, "job server")):
            assert _gone(pid, STOP_SECONDS), f"the {what} outlived the killed snakemake"
        client.wait(timeout=STOP_SECONDS)  # it lost its job: exits with an error
        assert client.returncode != 0
    finally:
        for proc in (parent, client):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def _holder(path: Path, seconds: float) -> subprocess.Popen:
    """A process holding a shared flock on `path` for `seconds` (then exiting)."""
    proc = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
                             "fcntl.flock(f, fcntl.LOCK_SH); print('held', flush=True); time.sleep(float(sys.argv[2]))",
                             str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("left", ["nothing", "stopping jobs", "a live run", "a cluster run"])
def test_a_stale_snakemake_lock_is_removed_only_when_no_process_of_its_run_is_left(tmp_path, left):
    from unlearnbench.runtime import runlock

    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("results/x\n")
    runlock.lock_path(tmp_path).touch()
    holder = None
    if left == "stopping jobs":  # jobs of a killed run, stopping within a second
        holder = _holder(runlock.lock_path(tmp_path), 1.0)
    elif left == "a live run":
        holder = _holder(runlock.lock_path(tmp_path, runlock.MAIN_LOCK_FILE), 60)
    elif left == "a cluster run":
        runlock.lock_path(tmp_path, runlock.CLUSTER_MARK).write_text("1\n")
    lines = []
    try:
        t0 = time.monotonic()
        removed = runlock.start_run(tmp_path, wait=20, log=lines.append)
        took = time.monotonic() - t0
    finally:
        for path in [p for p in runlock._HELD if p.startswith(str(tmp_path))]:
            os.close(runlock._HELD.pop(path))
        if holder is not None:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=30)
    assert removed == (left in ("nothing", "stopping jobs")), lines
    assert (locks / "0.output.lock").exists() == (not removed)
    assert took < (10 if left == "stopping jobs" else 3), (took, lines)
    if left == "a cluster run":
        assert "squeue --me" in lines[0]


def test_the_request_job_refuses_a_forget_set_the_metrics_cannot_evaluate(random_setup, tmp_path):
    """Where the config-time size is an expectation (sub_class under a train_size subset, bias below full strength),
    the request job checks the real one: it fails there, naming the scenario, not 60 jobs later in aggregation."""
    from unlearnbench.scenarios import prepare_request

    with pytest.raises(ValueError, match=r"scenarios\.few: this request forgets 3 training images.*at least 5"):
        prepare_request(experiment=str(random_setup.data), request=str(tmp_path / "few.npz"),
                        definition=str(tmp_path / "few.json"), scenario="few", options={"type": "random_n", "n": 3},
                        data_seed=0)
    assert not (tmp_path / "few.npz").exists()
