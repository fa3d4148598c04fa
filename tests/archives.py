"""Small archives in the real upstream formats, for running the downloading paper configs offline (tests/
test_paper_configs.py): MNIST's gzipped IDX files, CIFAR-10's and CIFAR-100's python tar.gz, UCI Adult's
adult.data / adult.test, CelebA's aligned-image zip with its attribute and partition lists.

The content is learnable, not noise, so the stages see the kind of data they were written for: MNIST's images are
scikit-learn's real 8x8 digits upscaled to 28x28; a CIFAR class is a colour and a stripe orientation plus noise;
Adult's income depends on education, hours and sex; CelebA's "Smiling" faces are brighter in the lower half.

`registry_patch(mirror)` is the Python appended to a *copy* of the package's dataset registry so that it accepts
exactly these files (their MD5s, their split sizes and class counts): the checksum expectation is replaced for the
test only, never by a user-facing switch."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np

IDX_FILES = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
             "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}


def md5_of(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _balanced_labels(n_classes: int, per_class: int, rng) -> np.ndarray:
    labels = np.repeat(np.arange(n_classes), per_class)
    return labels[rng.permutation(len(labels))].astype(np.int64)


# --------------------------------------------------------------------------------------------------- MNIST (IDX)

def write_idx_gz(path: Path, array: np.ndarray, magic: int, compresslevel: int = 9) -> None:
    """One IDX file, gzipped; mtime=0 makes the bytes (and so the MD5) reproducible."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=compresslevel,
                                   mtime=0))


def mnist_arrays(train_per_class: int, test_per_class: int, seed: int = 0) -> dict[str, np.ndarray]:
    """scikit-learn's real digits, 8x8 → 24x24 (each pixel 3x3) padded to 28x28, 0..16 → 0..255."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.pad(np.kron(digits.images, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2)))
    images = np.clip(images * 16, 0, 255).astype(np.uint8)
    rng = np.random.default_rng(seed)
    arrays = {"x_train": [], "y_train": [], "x_test": [], "y_test": []}
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(digits.target == c))
        for split, chosen in (("train", idx[:train_per_class]),
                              ("test", idx[train_per_class:train_per_class + test_per_class])):
            arrays[f"x_{split}"].append(images[chosen])
            arrays[f"y_{split}"].append(np.full(len(chosen), c, np.int64))
    out = {}
    for split in ("train", "test"):
        x, y = np.concatenate(arrays[f"x_{split}"]), np.concatenate(arrays[f"y_{split}"])
        order = rng.permutation(len(y))
        out[f"x_{split}"], out[f"y_{split}"] = x[order], y[order]
    return out


def write_mnist(folder: Path, train_per_class: int, test_per_class: int) -> dict:
    arrays = mnist_arrays(train_per_class, test_per_class)
    for name, filename in IDX_FILES.items():
        write_idx_gz(folder / filename, arrays[name], 2051 if name.startswith("x_") else 2049)
    return {"split_sizes": {"train": len(arrays["y_train"]), "test": len(arrays["y_test"])},
            "class_counts": {"train": [train_per_class] * 10, "test": [test_per_class] * 10},
            "md5": {f: md5_of(folder / f) for f in IDX_FILES.values()}}


# ------------------------------------------------------------------------------------------------ CIFAR (python)

def _cifar_images(labels: np.ndarray, n_classes: int, rng) -> np.ndarray:
    """A class is a base colour and a stripe orientation/frequency, plus noise: 32x32x3 uint8 (HWC)."""
    yy, xx = np.mgrid[0:32, 0:32]
    palette = np.random.default_rng(1234).integers(40, 216, size=(n_classes, 3))
    images = np.empty((len(labels), 32, 32, 3), np.uint8)
    for i, c in enumerate(labels):
        angle, freq = (c * 0.61) % np.pi, 0.25 + 0.08 * (c % 5)
        stripes = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy))[..., None]
        image = palette[c] + 40 * stripes + rng.normal(0, 20, size=(32, 32, 3))
        images[i] = np.clip(image, 0, 255).astype(np.uint8)
    return images


def hwc_to_rows(images: np.ndarray) -> np.ndarray:
    """Upstream stores an image as 3,072 bytes: the R plane, then G, then B."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def pickle_bytes(obj) -> bytes:
    return pickle.dumps(obj, protocol=2)


def add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def _member(tar: tarfile.TarFile, name: str, obj) -> None:
    add_member(tar, name, pickle_bytes(obj))


def write_cifar10(folder: Path, train_per_class: int, test_per_class: int, class_names) -> dict:
    rng = np.random.default_rng(10)
    y_train, y_test = _balanced_labels(10, train_per_class, rng), _balanced_labels(10, test_per_class, rng)
    x_train, x_test = _cifar_images(y_train, 10, rng), _cifar_images(y_test, 10, rng)
    batches = np.array_split(np.arange(len(y_train)), 5)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for b, rows in enumerate(batches):
            _member(tar, f"cifar-10-batches-py/data_batch_{b + 1}", {
                b"batch_label": f"training batch {b + 1} of 5".encode(), b"labels": [int(v) for v in y_train[rows]],
                b"data": hwc_to_rows(x_train[rows]), b"filenames": [b"img.png"] * len(rows)})
        _member(tar, "cifar-10-batches-py/test_batch", {
            b"batch_label": b"testing batch 1 of 1", b"labels": [int(v) for v in y_test],
            b"data": hwc_to_rows(x_test),
            b"filenames": [b"img.png"] * len(y_test)})
        _member(tar, "cifar-10-batches-py/batches.meta", {
            b"num_cases_per_batch": len(batches[0]), b"label_names": [n.encode() for n in class_names],
            b"num_vis": 3072})
    path = folder / "cifar-10-python.tar.gz"
    path.write_bytes(buffer.getvalue())
    return {"split_sizes": {"train": len(y_train), "test": len(y_test)},
            "class_counts": {"train": [train_per_class] * 10, "test": [test_per_class] * 10},
            "md5": {path.name: md5_of(path)}}


def write_cifar100(folder: Path, train_per_class: int, test_per_class: int, class_names, coarse_names,
                   fine_to_coarse) -> dict:
    """Fine labels balanced; coarse labels from `fine_to_coarse` (CIFAR-100's own superclass map)."""
    rng = np.random.default_rng(100)
    fine_to_coarse = np.asarray(fine_to_coarse)
    splits = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        y = _balanced_labels(100, per_class, rng)
        splits[split] = (_cifar_images(y, 100, rng), y, fine_to_coarse[y])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for split, (x, y, coarse) in splits.items():
            _member(tar, f"cifar-100-python/{split}", {
                b"filenames": [b"img.png"] * len(y), b"batch_label": split.encode(),
                b"fine_labels": [int(v) for v in y], b"coarse_labels": [int(v) for v in coarse],
                b"data": hwc_to_rows(x)})
        _member(tar, "cifar-100-python/meta", {b"fine_label_names": [n.encode() for n in class_names],
                                               b"coarse_label_names": [n.encode() for n in coarse_names]})
    path = folder / "cifar-100-python.tar.gz"
    path.write_bytes(buffer.getvalue())
    coarse_counts = {split: np.bincount(fine_to_coarse, minlength=20).astype(int) * per
                     for split, per in (("train", train_per_class), ("test", test_per_class))}
    return {"split_sizes": {"train": len(splits["train"][1]), "test": len(splits["test"][1])},
            "class_counts": {"train": [train_per_class] * 100, "test": [test_per_class] * 100},
            "coarse_class_counts": {k: v.tolist() for k, v in coarse_counts.items()},
            "md5": {path.name: md5_of(path)}}


# ----------------------------------------------------------------------------------------------------- UCI Adult

_WORK = ["Private", "Self-emp-not-inc", "State-gov", "Local-gov"]
_EDU = [("HS-grad", 9), ("Some-college", 10), ("Bachelors", 13), ("Masters", 14), ("11th", 7)]
_MARITAL = ["Never-married", "Married-civ-spouse", "Divorced"]
_OCC = ["Adm-clerical", "Exec-managerial", "Craft-repair", "Sales", "Machine-op-inspct"]
_REL = ["Not-in-family", "Husband", "Wife", "Own-child"]
_RACE = ["White", "Black", "Asian-Pac-Islander"]
_COUNTRY = ["United-States", "Mexico", "?"]


def _adult_rows(n: int, rng, test: bool) -> str:
    lines = []
    for _ in range(n):
        sex = "Male" if rng.random() < 0.67 else "Female"
        edu, edu_num = _EDU[rng.integers(len(_EDU))]
        hours = int(rng.integers(10, 70))
        score = 0.35 * (edu_num - 10) + 0.05 * (hours - 40) + (0.8 if sex == "Male" else -0.4) + rng.normal(0, 1)
        income = ">50K" if score > 0.6 else "<=50K"
        fields = [int(rng.integers(17, 80)), _WORK[rng.integers(4)], int(rng.integers(20000, 400000)), edu, edu_num,
                  _MARITAL[rng.integers(3)], _OCC[rng.integers(5)], _REL[rng.integers(4)], _RACE[rng.integers(3)],
                  sex, int(rng.choice([0, 0, 0, 2174, 7688])), 0, hours, _COUNTRY[rng.integers(3)],
                  income + ("." if test else "")]
        lines.append(", ".join(str(f) for f in fields))
    return "\n".join(lines) + "\n"


def write_adult(folder: Path, n_train: int, n_test: int) -> dict:
    rng = np.random.default_rng(7)
    (folder / "adult.data").write_text(_adult_rows(n_train, rng, test=False))
    (folder / "adult.test").write_text("|1x3 Cross validator\n" + _adult_rows(n_test, rng, test=True))
    return {"md5": {n: md5_of(folder / n) for n in ("adult.data", "adult.test")}}


# -------------------------------------------------------------------------------------------------------- CelebA

def write_celeba(folder: Path, n: int) -> dict:
    """`n` aligned 218x178 JPEGs, the 40-attribute list (Smiling among them) and the train/val/test partition."""
    from PIL import Image

    attributes = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
                  "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
                  "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
                  "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
                  "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
                  "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
                  "Wearing_Necktie", "Young"]
    rng = np.random.default_rng(5)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    values = np.where(rng.random((n, len(attributes))) < 0.5, 1, -1)
    smiling = attributes.index("Smiling")
    with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as archive:
        for name, row in zip(names, values):
            image = rng.normal(110, 25, size=(218, 178, 3))
            image[120:] += 50 if row[smiling] == 1 else -30
            buffer = io.BytesIO()
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, format="JPEG")
            archive.writestr(f"img_align_celeba/{name}", buffer.getvalue())
    (folder / "list_attr_celeba.txt").write_text(
        f"{n}\n" + " ".join(attributes) + "\n"
        + "".join(f"{name} " + " ".join(f"{v:2d}" for v in row) + "\n" for name, row in zip(names, values)))
    partition = rng.choice([0, 1, 2], size=n, p=[0.8, 0.1, 0.1])
    (folder / "list_eval_partition.txt").write_text("".join(f"{a} {p}\n" for a, p in zip(names, partition)))
    return {"md5": {f: md5_of(folder / f) for f in ("img_align_celeba.zip", "list_attr_celeba.txt",
                                                     "list_eval_partition.txt")}}


# ------------------------------------------------------------------------------------------------- the mirror

def build_mirror(folder: Path, *, mnist=(30, 10), cifar10=(30, 10), cifar100=(8, 3), adult=(600, 300),
                 celeba=120) -> dict:
    """Every archive the paper configs download, small, in `folder`; returns what `registry_patch` needs."""
    from unlearnbench.datasets.registry import DATASETS

    folder.mkdir(parents=True, exist_ok=True)
    c100 = DATASETS["cifar100"]
    fine_to_coarse = _cifar100_fine_to_coarse(c100)
    return {"image": {"mnist": write_mnist(folder, *mnist),
                      "cifar10": write_cifar10(folder, *cifar10, DATASETS["cifar10"].class_names),
                      "cifar100": write_cifar100(folder, *cifar100, c100.class_names, c100.coarse_class_names,
                                                 fine_to_coarse)},
            "adult": write_adult(folder, *adult), "celeba": write_celeba(folder, celeba)}


def _cifar100_fine_to_coarse(spec) -> list[int]:
    """A superclass for each fine class: 5 consecutive fine classes each (20 x 5, as CIFAR-100's own map has 5 per
    superclass). Not CIFAR-100's real map, which the registry does not hold; the scenarios read the coarse labels
    from the archive, and `sub_class` needs only that every fine class lies inside one superclass."""
    return [c // 5 for c in range(len(spec.class_names))]


def registry_patch(built: dict) -> str:
    """Python to append to a copy of unlearnbench/datasets/registry.py and tabular.py (two strings): the built
    archives' MD5s, split sizes and class counts replace the registry's, content hashes are dropped."""
    registry = (
        "\n\n# --- test only (tests/archives.py): accept the small archives built by the test ---\n"
        "import json as _json\n"
        f"for _name, _built in _json.loads({json.dumps(json.dumps(built['image']))}).items():\n"
        "    _extra = {'coarse_class_counts': {k: tuple(v) for k, v in _built['coarse_class_counts'].items()}} \\\n"
        "        if 'coarse_class_counts' in _built else {}\n"
        "    DATASETS[_name] = dataclasses.replace(\n"
        "        DATASETS[_name], split_sizes=_built['split_sizes'], content_sha256={},\n"
        "        class_counts={k: tuple(v) for k, v in _built['class_counts'].items()}, **_extra,\n"
        "    ).with_archive_md5s(_built['md5'])\n")
    tabular = (
        "\n\n# --- test only (tests/archives.py): accept the small Adult and CelebA files built by the test ---\n"
        f"ADULT = ADULT.with_archive_md5s({built['adult']['md5']!r})\n"
        "TABULAR['adult'] = ADULT\n"
        f"CELEBA = CELEBA.with_archive_md5s({built['celeba']['md5']!r})\n"
        "locate_celeba.__defaults__ = (CELEBA,)\n")
    return registry, tabular
