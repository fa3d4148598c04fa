"""Every shipped config runs end to end at miniature scale (tests/slurm/scaled.py: the config's own datasets,
scenarios, runs, tune stages, sweeps and artifacts; one seed, few epochs, width-8 models): one `snakemake --cores 2`
invocation finishes with rc 0, and then `snakemake -n` has nothing to do. So no config meets its first execution on
a user's machine or cluster. Configs that download data run on archives this test builds in the real formats
(IDX, the CIFAR-10 pickled tar.gz), served through `data.mirror`; the registry's pins (MD5s, split sizes, class
counts) are replaced in the test's copy of the package only, never by a user-facing switch. paper_jit and
paper_xs (CIFAR-100, Adult, CelebA) are validated and dry-run by tests/test_workflow.py; their miniature runs are
still to come (docs/slurm.md). Every snakemake call has a timeout."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "slurm"))
sys.path.insert(0, str(ROOT / "tests"))
from scaled import miniature  # noqa: E402

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist (.ci/run installs it)
NO_DOWNLOAD = ["uib_digits", "uib_bias_strength", "paper_uib_methods", "tune_digits", "jit_digits", "xs_digits",
               "fashion_mnist", "uib_fashion_mnist", "uib_fashion_bias_strength", "jit_fashion_mnist"]
ON_BUILT_ARCHIVES = ["paper_uib"]
DOWNLOADING = ["paper_uib", "paper_jit", "paper_xs"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def test_every_shipped_config_is_listed_here():
    shipped = {p.stem for p in (ROOT / "config").glob("*.yaml")} - {"schema"}
    assert shipped == set(NO_DOWNLOAD) | set(DOWNLOADING), shipped ^ (set(NO_DOWNLOAD) | set(DOWNLOADING))


@pytest.mark.parametrize("name", NO_DOWNLOAD)
def test_a_shipped_config_runs_end_to_end_at_miniature_scale(name, tmp_path):
    source = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    if "fashion" in name and not FASHION.is_dir():
        pytest.skip(f"{FASHION} is missing: apt-get install dataset-fashion-mnist")
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(miniature(source, tmp_path / "results")))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t0 = time.monotonic()
    run = subprocess.run(["timeout", "-s", "INT", "-k", "30", "1200", *SNAKEMAKE, "--cores", "2", "--configfile",
                          str(config)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=1300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    dry = subprocess.run([*SNAKEMAKE, "-n", "--configfile", str(config)], cwd=ROOT, capture_output=True, text=True,
                         env=env, timeout=300)
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-3000:]
    assert list((tmp_path / "results" / "paper").iterdir()), "no paper artifact was made"
    print(f"\n{name} at miniature scale: {time.monotonic() - t0:.0f} s")


# ------------------------------------------------------------------------------- configs that download data ----
SPLITS = {"train": 2000, "test": 600}  # 200 / 60 images per class: enough for miniature's 1,500-image subset


def _balanced(rng, shape: tuple, split: str) -> tuple:
    count = SPLITS[split]
    labels = np.repeat(np.arange(10), count // 10)
    rng.shuffle(labels)
    return rng.integers(0, 256, size=(count, *shape), dtype=np.uint8), labels.astype(np.int64)


def build_archives(mirror: Path) -> dict:
    """MNIST's four IDX files and CIFAR-10's tar.gz (five pickled training batches, a test batch, batches.meta) in
    `mirror`; returns the registry pins that accept exactly these files."""
    import hashlib
    import io
    import tarfile

    from test_datasets import IDX_FILES, add_member, hwc_to_rows, pickle_bytes, write_idx_mirror

    from unlearnbench.datasets import DATASETS

    rng = np.random.default_rng(0)
    mnist = {}
    for split in SPLITS:
        mnist[f"x_{split}"], mnist[f"y_{split}"] = _balanced(rng, (28, 28), split)
    write_idx_mirror(mirror, mnist)
    cifar = {}
    for split in SPLITS:
        cifar[f"x_{split}"], cifar[f"y_{split}"] = _balanced(rng, (32, 32, 3), split)
    buffer, per_batch = io.BytesIO(), SPLITS["train"] // 5
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for batch in range(5):
            rows = slice(batch * per_batch, (batch + 1) * per_batch)
            add_member(tar, f"cifar-10-batches-py/data_batch_{batch + 1}", pickle_bytes({
                b"batch_label": f"training batch {batch + 1} of 5".encode(), b"filenames": [b"img.png"] * per_batch,
                b"labels": [int(v) for v in cifar["y_train"][rows]], b"data": hwc_to_rows(cifar["x_train"][rows])}))
        add_member(tar, "cifar-10-batches-py/test_batch", pickle_bytes({
            b"batch_label": b"testing batch 1 of 1", b"filenames": [b"img.png"] * SPLITS["test"],
            b"labels": [int(v) for v in cifar["y_test"]], b"data": hwc_to_rows(cifar["x_test"])}))
        add_member(tar, "cifar-10-batches-py/batches.meta", pickle_bytes({
            b"num_cases_per_batch": per_batch, b"num_vis": 3072,
            b"label_names": [n.encode() for n in DATASETS["cifar10"].class_names]}))
    archive = mirror / DATASETS["cifar10"].archives[0].filename
    archive.write_bytes(buffer.getvalue())

    def md5(path: Path) -> str:
        return hashlib.md5(path.read_bytes()).hexdigest()

    counts = {split: [SPLITS[split] // 10] * 10 for split in SPLITS}
    return {"mnist": {"md5": {f: md5(mirror / f) for f in IDX_FILES.values()}, "split_sizes": SPLITS,
                      "class_counts": counts},
            "cifar10": {"md5": {archive.name: md5(archive)}, "split_sizes": SPLITS, "class_counts": counts}}


PIN_HOOK = """

# tests/test_configs.py: this copy of the package accepts the test's own archives (never the shipped package)
import json as _json

for _name, _pin in _json.loads({pins!r}).items():
    DATASETS[_name] = dataclasses.replace(
        DATASETS[_name], split_sizes=_pin["split_sizes"], content_sha256={{}},
        class_counts={{k: tuple(v) for k, v in _pin["class_counts"].items()}}).with_archive_md5s(_pin["md5"])
"""


@pytest.mark.parametrize("name", ON_BUILT_ARCHIVES)
def test_a_downloading_config_runs_end_to_end_on_built_archives_at_miniature_scale(name, tmp_path):
    import json
    import shutil

    workdir = tmp_path / "workflow"
    workdir.mkdir()
    for item in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / item, workdir / item)
    for item in ("rules", "workflow_scripts", "config", "envs", "report", "profiles"):
        shutil.copytree(ROOT / item, workdir / item)
    shutil.copytree(ROOT / "src", workdir / "src", ignore=shutil.ignore_patterns("__pycache__"))
    pins = build_archives(tmp_path / "mirror")
    with open(workdir / "src/unlearnbench/datasets/registry.py", "a") as f:
        f.write(PIN_HOOK.format(pins=json.dumps(pins)))
    cfg = miniature(yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text()), tmp_path / "results")
    cfg["data"] = {**(cfg.get("data") or {}), "mirror": str(tmp_path / "mirror"),
                   "download_dir": str(tmp_path / "downloads")}
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    t0 = time.monotonic()
    run = subprocess.run(["timeout", "-s", "INT", "-k", "30", "1200", *SNAKEMAKE, "--cores", "2", "--configfile",
                          str(config)], cwd=workdir, capture_output=True, text=True, env=env, timeout=1300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    dry = subprocess.run([*SNAKEMAKE, "-n", "--configfile", str(config)], cwd=workdir, capture_output=True,
                         text=True, env=env, timeout=300)
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-3000:]
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "results").rglob("manifest.json")]
    assert {m.get("name") or m.get("dataset") for m in manifests} >= {"mnist", "cifar10"}, manifests[:1]
    print(f"\n{name} at miniature scale on built archives: {time.monotonic() - t0:.0f} s")
