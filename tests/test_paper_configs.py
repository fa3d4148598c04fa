"""The paper configs that download their data (paper_uib: MNIST + CIFAR-10 with ResNet-18; paper_jit: CIFAR-10/100
with VGG11's reference head and the ViT; paper_xs: UCI Adult, MNIST, CelebA) run end to end at miniature scale
on small archives the test builds in the real upstream formats (tests/archives.py): the config's own datasets,
scenarios, runs, tune stages, sweeps, augmentation and artifacts, with one seed, 2 training epochs and the sizes of
tests/slurm/scaled.py's `miniature`. The registry's checksums are replaced in a copy of the package, for the test
only. One `snakemake --cores 2` invocation finishes with rc 0, every paper artifact of the config exists, and then
`snakemake -n` has nothing to do. Every snakemake call has a timeout."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "slurm")]
import archives  # noqa: E402
from scaled import miniature, run_to_completion  # noqa: E402

WORKFLOW = ("Snakefile", "config.yaml", "rules", "workflow_scripts", "config", "envs", "report", "slurm", "profiles")
# what each paper's artifacts must include (file names in results/paper/)
EXPECTED = {
    "paper_uib": ["table_uib.tex", "fig_metrics.png", "fig_sensitivity_uib_finetune.png",
                  "table_forget_quality_cifar10_random.tex"],
    "paper_jit": ["fig_jit_toy.png", "fig_jit_runtime.png", "table_forget_quality_cifar10_random_n.tex",
                  "fig_ulira_roc_cifar10_random_n.png"],
    "paper_xs": ["table_xs_frontier.tex", "fig_xs_frontier.png", "fig_xs_mnist_trajectories.png",
                 "fig_xs_barycenter.png", "fig_xs_densities.png", "table_uib.tex"],
}

# per config, what the miniature shrinks further: paper_uib's jobs are ResNet-18 (at the miniature's width 8, the
# width-k network of docs/models.md), so its image sources keep 60 training and 50 test images and each β × τ sweep
# two points (the sensitivity figures and the grid-search tune stage still run)
OPTIONS = {"paper_uib": {"train_size": 60, "test_size": 50, "lean": True}}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """A copy of the workflow whose package accepts the archives built in `mirror` (and nothing else)."""
    base = tmp_path_factory.mktemp("paper_configs")
    mirror, wf = base / "mirror", base / "workflow"
    built = archives.build_mirror(mirror)
    wf.mkdir()
    for name in WORKFLOW:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, wf / name)
        elif (ROOT / name).exists():
            shutil.copy(ROOT / name, wf / name)
    shutil.copytree(ROOT / "src", wf / "src", ignore=shutil.ignore_patterns("__pycache__"))
    registry, tabular = archives.registry_patch(built)
    with open(wf / "src/unlearnbench/datasets/registry.py", "a") as f:
        f.write(registry)
    with open(wf / "src/unlearnbench/datasets/tabular.py", "a") as f:
        f.write(tabular)
    return base, mirror, wf


def test_the_archives_are_refused_by_the_real_registry(workflow, tmp_path):
    """The built MNIST files pass only through the test's copy: the project's own registry refuses them by MD5."""
    from unlearnbench.datasets import DatasetError, prepare_dataset

    _, mirror, _ = workflow
    with pytest.raises(DatasetError, match="MD5"):
        prepare_dataset("mnist", tmp_path / "out", download_dir=tmp_path / "dl", mirror=str(mirror))
    assert not (tmp_path / "out" / "data.npz").exists()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_downloading_paper_config_runs_end_to_end_on_built_archives(name, workflow):
    base, mirror, wf = workflow
    results = base / f"results_{name}"
    cfg = miniature(yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text()), results, epochs=2, variants=2,
                    **OPTIONS.get(name, {}))
    cfg["data"] = {"mirror": str(mirror), "download_dir": str(base / f"downloads_{name}")}
    config = base / f"{name}.yaml"
    config.write_text(yaml.safe_dump(cfg))
    t0 = time.monotonic()
    run_to_completion(config, wf, wf / "src", 1500)
    made = {p.name for p in (results / "paper").iterdir()}
    assert set(EXPECTED[name]) <= made, sorted(set(EXPECTED[name]) - made)
    print(f"\n{name} at miniature scale on built archives: {time.monotonic() - t0:.0f} s, {len(made)} artifacts")
