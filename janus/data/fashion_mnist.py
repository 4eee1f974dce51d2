"""Fashion-MNIST from its four standard IDX files, as the data set's own distribution and Debian ship them.

Layout: `<data root>/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`; when that folder is
missing, Debian's package `dataset-fashion-mnist` location `/usr/share/datasets/fashion-mnist/` is used.
70,000 grey 28×28 images of 10 clothing classes: the official 60k train and 10k test splits (the validation
split is carved from train by the scenario, as for every data set). Images are scaled to [0, 1], resized
once to image_size (bilinear, as digits) and kept in memory with one channel.

An IDX file is a big-endian header (magic 0x0000 08 <rank>, 0x08 = unsigned byte, then one uint32 per
dimension) followed by the raw bytes; the reader checks the magic, the size and the label range.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from janus.data.sources import SourceData, TensorSource
from janus.errors import UserError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
HOW_TO_GET = ("install Debian's package (apt-get install dataset-fashion-mnist) or put the four files in "
              "<data root>/fashion-mnist/ and pass --data-root (or env JANUS_DATA)")


def build_fashion_mnist(cfg, root: Path) -> SourceData:
    """Both official splits at cfg.image_size."""
    directory = find_fashion_mnist_dir(root)
    train_x, train_y, test_x, test_y = load_fashion_mnist_arrays(directory)
    size = int(cfg.image_size)
    return SourceData(
        name="fashion-mnist",
        class_names=CLASS_NAMES,
        train=TensorSource(resized(train_x, size), train_y),
        test=TensorSource(resized(test_x, size), test_y),
        style="tensor",
        crop_scale=(0.8, 1.0),
        info={"source": str(directory), "split": "official 60k train / 10k test"},
    )


def find_fashion_mnist_dir(root: Path) -> Path:
    """`<root>/fashion-mnist` if it exists, else Debian's folder if it exists; else a one-line UserError."""
    for directory in (Path(root) / "fashion-mnist", DEBIAN_DIR):
        if directory.is_dir():
            return directory
    raise UserError(f"Fashion-MNIST not found in {Path(root) / 'fashion-mnist'} or {DEBIAN_DIR}: expected "
                    f"{', '.join(f + '.gz' for f in FILES.values())}; {HOW_TO_GET}")


def load_fashion_mnist_arrays(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images uint8 N×28×28, train labels int64, test images, test labels), checked."""
    return _load(str(Path(directory).resolve()))


@lru_cache(maxsize=2)
def _load(directory: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    arrays = {key: read_idx(idx_file(Path(directory), name)) for key, name in FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserError(f"Fashion-MNIST {split} files in {directory} disagree: images {images.shape}, "
                            f"labels {labels.shape}; {HOW_TO_GET}")
        if labels.size and labels.max() >= len(CLASS_NAMES):
            raise UserError(f"Fashion-MNIST {split} labels in {directory} go up to {labels.max()}, expected "
                            f"0..9; {HOW_TO_GET}")
    return (arrays["train_images"], arrays["train_labels"].astype(np.int64), arrays["test_images"],
            arrays["test_labels"].astype(np.int64))


def idx_file(directory: Path, name: str) -> Path:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    raise UserError(f"Fashion-MNIST file {name}.gz missing in {directory}: expected "
                    f"{', '.join(f + '.gz' for f in FILES.values())}; {HOW_TO_GET}")


def read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte IDX file (gzipped or not) as a uint8 array of its declared shape."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise UserError(f"cannot read IDX file {path} ({error}); {HOW_TO_GET}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] == 0:
        raise UserError(f"{path} is not an unsigned-byte IDX file (magic {raw[:4].hex() or 'empty'}, expected "
                        f"000008xx); {HOW_TO_GET}")
    rank = raw[3]
    header = 4 + 4 * rank
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise UserError(f"IDX file {path} is truncated or padded: {len(raw)} bytes for shape {shape}, expected "
                        f"{expected}; {HOW_TO_GET}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def resized(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 N×H×W -> float32 N×1×size×size in [0, 1], resized in chunks."""
    pixels = torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1)
    if size == pixels.shape[-1]:
        return pixels.float().div_(255.0)
    return torch.cat([F.interpolate(c.float() / 255.0, size=(size, size), mode="bilinear", align_corners=False)
                      for c in pixels.split(8192)]).clamp_(0.0, 1.0)
