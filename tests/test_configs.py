"""Every shipped config that needs no download runs end to end at miniature scale (tests/slurm/scaled.py: the
config's own datasets, scenarios, runs, tune stages, sweeps and artifacts; one seed, few epochs, width-8 models, one
scenario of a type, plus those it is tuned by: a type's further scenarios, e.g. JiT's per-class repeats, run the same
rules): one `snakemake --cores 2` invocation finishes with rc 0, and then `snakemake -n` has
nothing to do. So no config meets its first execution on a user's machine or cluster. The paper configs that
download MNIST, CIFAR, Adult or CelebA run on archives built in the test: tests/test_paper_configs.py. README's
metric table is checked against the metrics these runs' summaries hold. Every snakemake call has a timeout."""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "slurm"))
from scaled import miniature, run_to_completion  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist (.ci/run installs it)
NO_DOWNLOAD = ["uib_digits", "uib_bias_strength", "paper_uib_methods", "tune_digits", "jit_digits", "xs_digits",
               "fashion_mnist", "uib_fashion_mnist", "uib_fashion_bias_strength", "jit_fashion_mnist",
               "forget_quality_digits", "uib_mnist", "xs_mnist", "jit_mnist", "jit_digits_fair", "uib_digits_fair"]
DOWNLOADING = ["paper_uib", "paper_jit", "paper_xs"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
METRICS_SEEN: dict[str, set[str]] = {}  # config -> the metrics its summary/runs.csv holds
# metrics that compare a run with the oracles of the *other* seeds: none at one seed (the miniature's); the 3-seed
# workflow run of tests/test_workflow.py checks that they are in its summary
SEVERAL_SEEDS = {"oracle_rank_deviation", "oracle_outside_share", "oracle_margin_ks"}


def readme_metrics() -> set[str]:
    """The metric names of README's table under "Reading the results" (every backticked name of a row's first
    cell)."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| metric | definition | better |"):]
    table = table[:table.index("\n\n")]
    return {name for row in table.splitlines()[2:] for name in re.findall(r"`([a-z0-9_]+)`", row.split("|")[1])}


def test_every_shipped_config_is_listed_here():
    shipped = {p.stem for p in (ROOT / "config").glob("*.yaml")} - {"schema"}
    assert shipped == set(NO_DOWNLOAD) | set(DOWNLOADING), shipped ^ (set(NO_DOWNLOAD) | set(DOWNLOADING))


@pytest.mark.parametrize("name", NO_DOWNLOAD)
def test_a_shipped_config_runs_end_to_end_at_miniature_scale(name, tmp_path):
    source = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    if "fashion" in name and not FASHION.is_dir():
        pytest.skip(f"{FASHION} is missing: apt-get install dataset-fashion-mnist")
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(miniature(source, tmp_path / "results", variants=1)))
    t0 = time.monotonic()
    run_to_completion(config, ROOT, ROOT / "src", 1200)
    assert list((tmp_path / "results" / "paper").iterdir()), "no paper artifact was made"
    METRICS_SEEN[name] = set(pd.read_csv(tmp_path / "results" / "summary" / "runs.csv").metric)
    print(f"\n{name} at miniature scale: {time.monotonic() - t0:.0f} s")


def test_readme_lists_exactly_the_metrics_the_summaries_hold():
    """README's metric table against the metrics the shipped configs' summaries actually hold: every metric a
    summary holds is documented, and every documented metric is made by some shipped config."""
    if set(METRICS_SEEN) != {n for n in NO_DOWNLOAD if "fashion" not in n or FASHION.is_dir()}:
        pytest.skip("needs every config run of this module (run the whole file)")
    seen = set().union(*METRICS_SEEN.values())
    documented = readme_metrics()
    assert seen - documented == set(), f"in runs.csv but not in README's metric table: {sorted(seen - documented)}"
    assert documented - seen - SEVERAL_SEEDS == set(), \
        f"in README's metric table but in no summary: {sorted(documented - seen - SEVERAL_SEEDS)}"
