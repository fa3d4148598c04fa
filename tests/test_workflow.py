"""The Snakemake workflow end to end, in a copy of the repository: the UIB part of the default at 3 seeds.

Also checks incremental reruns (dry runs after changes) and config errors that stop the run before any job.
Every snakemake call has a timeout.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import uib_part

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SEEDS = 3

pytestmark = pytest.mark.slow


def _copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, dest / name)
    for name in ("rules", "workflow_scripts", "config", "envs", "report"):
        shutil.copytree(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}  # the copy's package, so edits stay in the copy
    return subprocess.run([*SNAKEMAKE, "--cores", "2", *args], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=timeout)


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Job counts per rule of a dry run."""
    result = snakemake(workdir, "--dry-run", *args, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[-1]
    counts = {}
    for line in table.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def n_oracles(config: dict) -> int:
    """Reference oracles per seed: one per (dataset, scenario, reference the scenario type declares)."""
    from snakemake.utils import validate

    from unlearnbench.config.plan import parse

    filled = yaml.safe_load(yaml.safe_dump(config))
    validate(filled, str(ROOT / "config" / "schema.yaml"))
    plan = parse(filled)
    return sum(len(plan.oracles(scenario)) for _, scenario in plan.experiments)


def _write_config(workdir: Path, config: dict, name: str = "test_config") -> Path:
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def completed(tmp_path_factory):
    workdir = _copy_workflow(tmp_path_factory.mktemp("workflow"))
    config = uib_part(yaml.safe_load((ROOT / "config.yaml").read_text()))  # the JiT, tune, xs stages: own tests
    config["seeds"] = SEEDS
    cfg_path = _write_config(workdir, config)
    result = snakemake(workdir, "--configfile", str(cfg_path))
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir, config, cfg_path


def test_default_workflow_produces_table_figure_and_summary(completed):
    workdir, config, _ = completed
    results = workdir / "results"
    for name in ("paper/table_uib.tex", "paper/fig_metrics.pdf", "paper/fig_metrics.png", "paper/fig_bias_trace.pdf",
                 "summary/runs.csv", "summary/runs.parquet", "summary/summary.csv", "summary/stats.csv",
                 "summary/summary.md"):
        assert (results / name).stat().st_size > 0, name
    summary = pd.read_csv(results / "summary/summary.csv")
    cell = summary.set_index(["dataset", "scenario", "setting", "method", "metric"]).sort_index()
    cell = cell.xs("standard", level="setting")
    retrain_forget = cell.loc[("digits", "random", "retrain", "forget_acc"), "mean"]
    retrain_f1 = cell.loc[("digits", "random", "retrain", "test_f1"), "mean"]
    assert 0.8 <= retrain_forget <= 1.0 and 0.9 <= retrain_f1 <= 1.0
    # the bias scenario is neither vacuous nor degenerate: the baseline learned the colour -> label link
    # (V above the oracle's in every seed) and the shapes (test F1 at least 3x chance); the oracle did not
    runs = pd.read_parquet(results / "summary/runs.parquet")
    v = runs[(runs.scenario == "bias") & (runs.metric == "bias_cramers_v")].pivot_table(
        index="seed", columns="method", values="value")
    assert cell.loc[("digits_c", "bias", "retrain", "bias_cramers_v"), "mean"] < 0.4
    assert (v["original"] > v["retrain"] + 0.1).all(), v
    assert cell.loc[("digits_c", "bias", "original", "test_f1"), "mean"] >= 3 * 0.1
    assert "retrain_replace" in set(v.columns)  # the scenario's second reference oracle
    assert runs["value"].notna().all()
    per_cell = runs.groupby(["dataset", "scenario", "method", "metric"]).seed.nunique()
    defined = per_cell.drop(index="mia_efficacy_svc", level="metric")  # undefined seeds are flagged, not stored
    assert (defined == SEEDS).all()
    table = (results / "paper/table_uib.tex").read_text()
    assert "\\toprule" in table and "Patterns and Biases" in table and "Random Data Points" in table
    assert "nan" not in table.lower()
    # UIB Table 1: every scenario x setting has its FT, SR and IF rows (and Standard its Retrain), all filled
    rows, scenario, setting = set(), None, None
    for line in table.splitlines():
        cells = [c.strip() for c in line.removesuffix("\\\\").split(" & ")]
        if len(cells) < 4 or cells[2] == "Method":
            continue
        scenario, setting = cells[0] or scenario, cells[1] or setting
        rows.add((scenario, setting, cells[2]))
        assert "--" not in cells[3:7] or "undefined" in cells[-1], line
    from unlearnbench.artifacts.uib.tables import METHOD_NAMES, SETTING_NAMES

    configured = {(SETTING_NAMES[spec.get("setting", "standard")], METHOD_NAMES.get(spec["method"], spec["method"]))
                  for spec in config["methods"].values()}
    for scenario in ("Patterns and Biases", "Random Data Points"):
        assert (scenario, "Standard", "Retrain") in rows
        for setting in ("Standard", "Sparsity", "UIB"):
            # UIB Table 1's FT, SR (fisher_new) and IF rows where the config runs them, and every other run's row
            expected = {(scenario, setting, m) for s, m in configured if s == setting}
            assert expected and expected <= rows, (scenario, setting, expected - rows)
    assert ("Patterns and Biases", "Standard", "Retrain ($\\Delta D \\to \\tilde{z}$)") in rows
    assert_table_not_degenerate(table)
    assert (results / "logs/job_server.log").exists()  # the local run forked its jobs from the job server
    stats = pd.read_csv(results / "summary/stats.csv")
    assert {"pvalue", "pvalue_holm", "rank_biserial", "n", "note"} <= set(stats.columns)
    for rule in ("baseline", "unlearn", "aggregate"):
        assert any((results / "logs").glob(f"**/*")), rule
    assert any((results / "benchmarks" / "unlearn").glob("*.tsv"))


def assert_table_not_degenerate(table: str, max_mia_std: float = 30.0) -> None:
    """The acceptance check on table_uib.tex: no two different methods of a scenario have identical cells (RIP,
    MIA-Efficacy, test F1: a method equal to another is a bug, not a result), and no MIA-Efficacy cell has a std
    above 30 points (0/1 flips of an attack with nothing to learn are reported as undefined instead)."""
    scenario, by_scenario = None, {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.removesuffix("\\\\").split(" & ")]
        if len(cells) < 7 or cells[2] == "Method":
            continue
        scenario = cells[0] or scenario
        by_scenario.setdefault(scenario, []).append(cells)
        mia = cells[4]
        if "$\\pm$" in mia:
            assert float(mia.split("$\\pm$")[1]) <= max_mia_std, line
    for scenario, rows in by_scenario.items():
        seen = {}
        for cells in rows:
            key = tuple(cells[3:6])  # RIP, MIA-Efficacy, test F1 (UT differs by construction)
            assert key not in seen, f"{scenario}: {seen.get(key)} and {cells[1:3]} have identical cells {key}"
            seen[key] = cells[1:3]


def test_the_several_seed_metrics_of_readmes_table_are_in_a_multi_seed_summary(completed):
    """README's metric table is checked against one-seed runs in tests/test_configs.py; the metrics that compare a
    run with the other seeds' oracles exist only with several seeds: here (SEEDS seeds)."""
    from test_configs import SEVERAL_SEEDS, readme_metrics

    workdir, _, _ = completed
    metrics = set(pd.read_csv(workdir / "results" / "summary" / "runs.csv").metric)
    assert SEVERAL_SEEDS <= readme_metrics() and SEVERAL_SEEDS <= metrics, SEVERAL_SEEDS - metrics


def test_snakemake_report_holds_every_figure_and_table(completed):
    """`snakemake --report report.html` (README): one self-contained page with every report(...) output."""
    workdir, config, cfg = completed
    result = snakemake(workdir, "--configfile", str(cfg), "--report", "report.html", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    html = (workdir / "report.html").read_text()
    for name in ("fig_metrics.png", "fig_bias_trace.png", "table_uib.tex"):
        assert name in html, name


def test_complete_run_has_nothing_left(completed):
    workdir, _, cfg = completed
    assert planned_jobs(workdir, "--configfile", str(cfg)) == {}


REPORT = {"aggregate": 1, "statistics": 1, "figures": 1, "tables": 1, "all": 1}


def test_changing_one_knob_reruns_only_that_method(completed):
    workdir, config, _ = completed
    changed = yaml.safe_load(yaml.safe_dump(config))
    changed["methods"]["finetune"]["lr"] = 0.03
    cfg = _write_config(workdir, changed, "changed_knob")
    n_experiments = sum(len(d["scenarios"]) for d in config["datasets"].values())
    assert planned_jobs(workdir, "--configfile", str(cfg)) == {"unlearn": SEEDS * n_experiments, **REPORT}


def test_adding_a_seed_runs_only_that_seeds_jobs(completed):
    workdir, config, _ = completed
    changed = yaml.safe_load(yaml.safe_dump(config))
    changed["seeds"] = list(range(SEEDS + 1))
    cfg = _write_config(workdir, changed, "added_seed")
    n_datasets = len(config["datasets"])
    n_experiments = sum(len(d["scenarios"]) for d in config["datasets"].values())
    expected = {"baseline": n_datasets, "retrain_oracle": n_oracles(config), "evaluate_original": n_experiments,
                "unlearn": n_experiments * len(config["methods"]), **REPORT}
    if any(spec.get("setting") == "sparsity" for spec in config["methods"].values()):
        expected["sparse_baseline"] = n_datasets  # one sparsity level in the default
    assert planned_jobs(workdir, "--configfile", str(cfg)) == expected


def _edited(workdir: Path, relative: str, addition: str = "", old: str = "", new: str = ""):
    """A context in which module `relative` (under src/unlearnbench) has `addition` appended (and `old` replaced by
    `new`)."""
    from contextlib import contextmanager

    @contextmanager
    def edit():
        module = workdir / "src/unlearnbench" / relative
        original = module.read_text()
        assert old in original
        try:
            module.write_text(original.replace(old, new, 1) + addition)
            yield
        finally:
            module.write_text(original)
    return edit()


def test_editing_one_method_module_reruns_only_that_method(completed):
    workdir, config, cfg = completed
    n_experiments = sum(len(d["scenarios"]) for d in config["datasets"].values())
    n_runs = sum(spec["method"] == "fisher_new" for spec in config["methods"].values())  # its three settings
    with _edited(workdir, "methods/fisher_new.py", "\n_EDIT = 1\n"):
        assert planned_jobs(workdir, "--configfile", str(cfg)) == {"unlearn": SEEDS * n_experiments * n_runs,
                                                                   **REPORT}


def test_editing_a_comment_or_docstring_reruns_nothing(completed):
    workdir, _, cfg = completed
    with _edited(workdir, "nn/engine.py", "\n# a comment\n"), \
            _edited(workdir, "methods/jit.py", old='"""JiT', new='"""An edited docstring of JiT'):
        assert planned_jobs(workdir, "--configfile", str(cfg)) == {}


def test_editing_the_uib_wrapper_reruns_uib_runs_only(completed):
    workdir, config, cfg = completed
    n_experiments = sum(len(d["scenarios"]) for d in config["datasets"].values())
    n_uib = sum(spec.get("setting") == "uib" for spec in config["methods"].values())
    with _edited(workdir, "methods/uib.py", "\n_EDIT = 1\n"):
        assert planned_jobs(workdir, "--configfile", str(cfg)) == {"unlearn": SEEDS * n_experiments * n_uib, **REPORT}


def test_editing_the_engine_reruns_every_job_that_trains_with_it(completed):
    """engine.py is imported by the training jobs and (through methods/base.py) by every method: an edit reruns the
    baselines, the oracles, the sparse baselines and every unlearning job; data preparation stays."""
    workdir, config, cfg = completed
    n_datasets = len(config["datasets"])
    n_experiments = sum(len(d["scenarios"]) for d in config["datasets"].values())
    with _edited(workdir, "nn/engine.py", "\n_EDIT = 1\n"):
        planned = planned_jobs(workdir, "--configfile", str(cfg))
    assert planned["baseline"] == SEEDS * n_datasets
    assert planned["retrain_oracle"] == SEEDS * n_oracles(config)
    assert planned["unlearn"] == SEEDS * n_experiments * len(config["methods"])
    assert "prepare_experiment" not in planned and "forget_request" not in planned


def test_every_rule_calls_its_target_by_keyword():
    """Each rule's named inputs, outputs and params are exactly the keyword parameters of its package target
    (unlearnbench.runtime.jobs.TARGETS), so the one generic workflow script can map them."""
    from snakemake.api import ConfigSettings, ResourceSettings, SnakemakeApi

    from unlearnbench.runtime.jobs import TARGETS, call_arguments

    with SnakemakeApi() as api:
        workflow = api.workflow(resource_settings=ResourceSettings(cores=1),
                                config_settings=ConfigSettings(config={"results": "/nonexistent/results"}),
                                snakefile=ROOT / "Snakefile", workdir=ROOT)._workflow
        scripted = [rule for rule in workflow.rules if rule.script]
        assert {rule.name for rule in scripted} == set(TARGETS)
        for rule in scripted:
            assert rule.script.endswith("workflow_scripts/job.py"), rule.name
            keys = [*rule.input._names, *rule.output._names, *rule.params._names, "log", "threads"]
            call_arguments(TARGETS[rule.name], dict.fromkeys(keys))  # raises TypeError on any mismatch


@pytest.mark.parametrize("mutate,key", [
    (lambda c: c["methods"]["jit"].update(method="nope"), "methods.jit.method"),
    (lambda c: c["methods"]["finetune"].update(lr=-0.1), "methods.finetune.lr"),
    (lambda c: c["scenarios"]["random"].update(fraction=1.5), "fraction"),
    (lambda c: c["datasets"]["digits"].update(source="imagenet"), "source"),
    # GKT is defined for full_class only; the default's scenarios are bias and random
    (lambda c: c["methods"].update(gkt={"method": "gkt"}), "methods.gkt.method"),
])
def test_bad_config_stops_before_any_job_and_names_the_key(tmp_path, mutate, key):
    workdir = _copy_workflow(tmp_path)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    mutate(config)
    cfg = _write_config(workdir, config)
    result = snakemake(workdir, "--configfile", str(cfg), "--dry-run", timeout=120)
    assert result.returncode != 0
    assert key in result.stderr + result.stdout
    assert not (workdir / "results").exists()
