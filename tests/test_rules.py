"""The rules' own hygiene: every rule that runs a job writes a log and a benchmark (README promises both), and
`snakemake --lint` has nothing to say."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def rule_blocks() -> dict[str, str]:
    blocks = {}
    for path in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule |checkpoint )", path.read_text()):
            m = re.match(r"(?:rule|checkpoint) (\w+):", block)
            if m:
                blocks[m.group(1)] = block
    return blocks


def test_every_rule_that_runs_a_job_writes_a_log_and_a_benchmark():
    blocks = rule_blocks()
    jobs = {name for name, block in blocks.items() if re.search(r"^\s+(script|run|shell):", block, re.M)}
    assert len(jobs) > 30, sorted(jobs)
    missing = {name: [k for k in ("log:", "benchmark:") if k not in blocks[name]] for name in jobs}
    assert {n: m for n, m in missing.items() if m} == {}


@pytest.mark.timeout(300)
def test_snakemake_lint_is_clean():
    run = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True,
                         timeout=280)
    text = run.stdout + run.stderr
    assert run.returncode == 0 and "Congratulations, your workflow is in a good condition!" in text, text[-4000:]


# the only lines of the Snakefile that may touch the config dict: validating it and parsing it into the Plan
CONFIG_READERS = ("validation.check_files(", "validation.validate(config", "PLAN = parse_config(config")


def test_the_plan_is_the_only_reader_of_config():
    """Rules read the Plan (PLAN.datasets, PLAN.device, PLAN.resources, ...), never the config dict: one place
    validates and fills every default. Modules outside unlearnbench.config take what the Plan hands them."""
    offenders = []
    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk")),
                 *sorted((ROOT / "workflow_scripts").glob("*.py"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if re.search(r"\bconfig\s*(\[|\.get\(|\.items\(|\.keys\()", code) or re.search(r"[(,]\s*config\s*[,)]", code):
                if not any(allowed in code for allowed in CONFIG_READERS):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    for path in sorted((ROOT / "src" / "unlearnbench").rglob("*.py")):
        if "config" in path.relative_to(ROOT / "src" / "unlearnbench").parts[:1]:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bconfig\[\s*[\"']", line.split("#")[0]):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
