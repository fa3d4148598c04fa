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
