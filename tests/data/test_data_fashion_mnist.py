"""Fashion-MNIST: the IDX reader against hand-written files, the data set through build_scenario, bad files."""

import gzip
import struct

import numpy as np
import pytest

from janus.config import DataConfig
from janus.data import build_scenario, fashion_mnist
from janus.errors import UserError


def idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_split(base, split: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    base.mkdir(parents=True, exist_ok=True)
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        name = f"{split}-{kind}-ubyte"
        data = idx_bytes(array.astype(np.uint8))
        (base / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)


def data_config(**overrides) -> DataConfig:
    return DataConfig(**{"image_size": 16, **overrides})


def make_fashion(root, n_train=30, n_test=20, gz=True):
    rng = np.random.default_rng(0)
    base = root / "fashion-mnist"
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        write_split(base, split, images, labels, gz)
        arrays[split] = (images, labels)
    fashion_mnist._load.cache_clear()
    return base, arrays


def test_read_idx_returns_the_written_values(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "b.gz").write_bytes(gzip.compress(idx_bytes(array)))
    for name in ("a", "b.gz"):
        read = fashion_mnist.read_idx(tmp_path / name)
        assert read.shape == (2, 3, 4) and np.array_equal(read, array)


@pytest.mark.parametrize("gz", [True, False])
def test_arrays_round_trip_exactly(tmp_path, gz):
    base, arrays = make_fashion(tmp_path, gz=gz)
    train_x, train_y, test_x, test_y = fashion_mnist.load_fashion_mnist_arrays(base)
    assert np.array_equal(train_x, arrays["train"][0]) and np.array_equal(test_y, arrays["t10k"][1])
    assert train_y.dtype == np.int64 and train_x.shape == (30, 28, 28) and test_x.shape == (20, 28, 28)


def test_builds_a_scenario_with_the_official_splits(tmp_path):
    make_fashion(tmp_path)
    scenario = build_scenario(data_config(dataset="fashion-mnist", root=str(tmp_path), tasks=5, image_size=16),
                              seed=0)
    assert scenario.class_names[:2] == ("T-shirt/top", "Trouser") and len(scenario.tasks) == 5
    assert sum(len(t.test) for t in scenario.tasks) == 20
    assert sum(len(t.train) + len(t.val) for t in scenario.tasks) == 30
    image, label = scenario.tasks[0].test[0]
    assert tuple(image.shape) == (3, 16, 16) and 0 <= image.min() and image.max() <= 1 and label in (0, 1)


def test_falls_back_to_the_debian_location(tmp_path, monkeypatch):
    base, _ = make_fashion(tmp_path / "debian")
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", base)
    assert fashion_mnist.find_fashion_mnist_dir(tmp_path / "empty-root") == base


def _corrupt(base, name, data: bytes):
    (base / name).write_bytes(gzip.compress(data))
    fashion_mnist._load.cache_clear()


@pytest.mark.parametrize("case", ["missing", "magic", "truncated", "count", "labels"])
def test_bad_files_give_one_line_naming_the_file_and_the_package(tmp_path, case):
    base, arrays = make_fashion(tmp_path)
    images, labels = arrays["train"]
    if case == "missing":
        (base / "train-labels-idx1-ubyte.gz").unlink()
    elif case == "magic":
        _corrupt(base, "train-images-idx3-ubyte.gz", b"\x00\x00\x0d\x03" + idx_bytes(images)[4:])
    elif case == "truncated":
        _corrupt(base, "train-images-idx3-ubyte.gz", idx_bytes(images)[:-5])
    elif case == "count":
        _corrupt(base, "train-labels-idx1-ubyte.gz", idx_bytes(labels[:-1]))
    else:
        _corrupt(base, "train-labels-idx1-ubyte.gz", idx_bytes(labels + 10))
    with pytest.raises(UserError) as error:
        fashion_mnist.load_fashion_mnist_arrays(base)
    message = str(error.value)
    assert "\n" not in message and "dataset-fashion-mnist" in message
    assert "train" in message and ("ubyte" in message or case in ("count", "labels"))


def test_no_folder_anywhere_names_both_places(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "nowhere")
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        build_scenario(data_config(dataset="fashion-mnist", root=str(tmp_path)), seed=0)
