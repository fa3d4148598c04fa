"""A method in a user's own installed package (tests/plugin_example, registered through the `unlearnbench.methods`
entry point) is found by the registry, passes the same conformance suite as unlearnbench's own methods, is
validated by the config check and runs in the tables, with no edit to unlearnbench.

The package is installed the way pip installs it, offline: its source on the path and a `*.dist-info` folder whose
entry_points.txt is generated from the example's own pyproject.toml (importlib.metadata reads exactly that)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "plugin_example"
sys.path.insert(0, str(ROOT / "tests" / "slurm"))
from scaled import miniature  # noqa: E402

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A site folder where the example package is installed (source + dist-info with its entry points)."""
    site = tmp_path_factory.mktemp("site")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    shutil.copytree(EXAMPLE / "src" / "unlearnbench_example", site / "unlearnbench_example")
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value}" for name, value in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


def _env(site: Path) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT / "src")])}


def test_the_plugin_method_is_registered_hashed_and_conformant(site):
    probe = subprocess.run(
        [sys.executable, "-c",
         "from unlearnbench.methods import REGISTRY; from unlearnbench.config.plan import RunSpec; "
         "m = REGISTRY['neggrad_plus']; print(m.__module__); "
         "print(RunSpec(name='n', method='neggrad_plus', setting='standard', knobs={}, setting_knobs={}).job('d', "
         "'s')['code'])"], capture_output=True, text=True, env=_env(site), timeout=120)
    assert probe.returncode == 0, probe.stderr[-3000:]
    module, code = probe.stdout.split()
    assert module == "unlearnbench_example.neggrad_plus" and len(code) == 16
    # the conformance suite, unchanged, over the registry that now holds the plugin's method
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
                          "neggrad_plus or fast_table", str(ROOT / "tests" / "test_conformance.py")],
                         cwd=ROOT, capture_output=True, text=True, env=_env(site), timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    passed = int(re.search(r"(\d+) passed", run.stdout).group(1))
    assert passed >= 3, run.stdout[-2000:]  # the table check, knobs, the run (and each wrapper that supports it)
    without = subprocess.run([sys.executable, "-c", "from unlearnbench.methods import REGISTRY; "
                              "print('neggrad_plus' in REGISTRY)"], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, timeout=120)
    assert without.stdout.strip() == "False"


def test_a_broken_plugin_names_its_entry_point(site, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    (broken / "unlearnbench_example" / "neggrad_plus.py").write_text("raise RuntimeError('boom')\n")
    run = subprocess.run([sys.executable, "-c", "import unlearnbench.methods"], capture_output=True, text=True,
                         env=_env(broken), timeout=120)
    assert run.returncode != 0
    assert "entry point 'unlearnbench_example.neggrad_plus' (group 'unlearnbench.methods')" in run.stderr


@pytest.mark.slow
def test_the_plugin_method_runs_in_the_uib_table(site, tmp_path):
    cfg = miniature(yaml.safe_load((ROOT / "config" / "uib_digits.yaml").read_text()), tmp_path / "results",
                    variants=2)
    cfg["methods"]["neggrad_plus"] = {"method": "neggrad_plus", "epochs": 1}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run = subprocess.run(["timeout", "-s", "INT", "-k", "30", "800", sys.executable, "-m", "snakemake", "--cores",
                          "2", "--configfile", str(config)], cwd=ROOT, capture_output=True, text=True,
                         env=_env(site), timeout=850)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    table = (tmp_path / "results" / "paper" / "table_uib.tex").read_text()
    assert "neggrad" in table.lower(), table[:2000]
    bad = dict(cfg, methods={**cfg["methods"], "neggrad_plus": {"method": "neggrad_plus", "alpha": 2.0}})
    config.write_text(yaml.safe_dump(bad))
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(config)], cwd=ROOT,
                         capture_output=True, text=True, env=_env(site), timeout=300)
    assert dry.returncode != 0 and "methods.neggrad_plus.alpha" in dry.stdout + dry.stderr
