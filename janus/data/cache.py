"""The decoded-image cache (data.cache=on): each image decoded once per data set, view and resolution.

A view (janus.data.transforms.cache_views) of the images a scenario uses from one source is stored as one raw
uint8 file N×3×H×W, read back through np.memmap, beside a JSON sidecar:

    <cache dir>/<dataset>-<split>-<view>-<key>.u8   (+ .json: key, shape, transform repr, build time)

The key hashes the format version, the data set and split, the source's items (file paths below the resolved
folder with their labels, sizes and mtimes; or the arrays' shape and a hash of their bytes), the view's name
and transform repr, and the PIL / torchvision versions: a changed transform, resolution or file gives
another key and the view is rebuilt; the same ones are a hit (nothing decoded). Files are written under a
temporary name and renamed, the data before its sidecar, so a sidecar always describes a complete file.
Stale entries stay until deleted by hand. In-memory tensor data ("tensor" style) is never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import PIL
import torch
import torchvision
from torch.utils.data import DataLoader, Dataset

from janus.data.roots import cache_dir as default_cache_root
from janus.data.sources import ArraySource, FileSource, Source
from janus.errors import UserError

FORMAT_VERSION = 1        # bump when the meaning of a stored file changes
BUILD_BATCH = 64
PARALLEL_BUILD_MIN = 512  # below this many images the build decodes in this process


def cache_root(configured: str | None) -> Path:
    """data.cache_dir, else <$JANUS_CACHE, else ~/.cache/janus>/decoded (janus.data.roots.cache_dir)."""
    return Path(configured).expanduser() if configured else default_cache_root() / "decoded"


class CachedSource:
    """One view of a source: `load(i)` gives source image i as a uint8 tensor [3, H, W] read from the memory-mapped
    file (or indexed from `resident`, the whole view in device memory, after `to_device`). `labels` are the
    source's, so task formation indexes it like the source; only the stored indices can be loaded."""

    def __init__(self, path: Path, shape: tuple[int, ...], stored: np.ndarray, labels: np.ndarray):
        self.path, self.shape, self.labels = Path(path), tuple(int(s) for s in shape), labels
        self.rows = np.full(len(labels), -1, dtype=np.int64)
        self.rows[stored] = np.arange(len(stored))
        self.resident: torch.Tensor | None = None
        self._array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))

    def array(self) -> np.ndarray:
        if self._array is None:   # opened lazily: each loader worker maps the file itself
            self._array = np.memmap(self.path, dtype=np.uint8, mode="r", shape=self.shape)
        return self._array

    def row(self, index: int) -> int:
        row = int(self.rows[index])
        if row < 0:
            raise IndexError(f"source index {index} is not in the cached view {self.path.name}")
        return row

    def load(self, index: int) -> torch.Tensor:
        return torch.from_numpy(np.array(self.array()[self.row(index)]))

    def to_device(self, device: torch.device, chunk: int = 1024) -> None:
        """Copy the whole view into `device` memory (`resident`), a chunk of images at a time."""
        stored = torch.empty(self.shape, dtype=torch.uint8, device=device)
        data = self.array()
        for start in range(0, self.shape[0], chunk):
            stored[start:start + chunk].copy_(torch.from_numpy(np.array(data[start:start + chunk])))
        self.resident = stored

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None, "resident": None}   # workers map the file; never copy GPU data


def open_views(source: Source, indices: np.ndarray, views: dict[str, Callable], *, dataset: str, split: str,
               root: Path, workers: int = 0) -> dict[str, CachedSource]:
    """The cached views (name -> CachedSource) of `source` at `indices`, the missing ones built in one decode
    pass. `views` maps a view name to its transform: PIL image -> uint8 [3, H, W] of one fixed size."""
    if not isinstance(source, (FileSource, ArraySource)):
        raise TypeError(f"the decoded-image cache needs file or array sources, not {type(source).__name__}")
    stored = np.unique(np.asarray(indices, dtype=np.int64))
    if not len(stored):
        raise ValueError("nothing to cache: no indices")
    items = fingerprint(source, stored)
    keys = {name: view_key(dataset, split, items, name, transform) for name, transform in views.items()}
    found = {name: read_sidecar(root, dataset, split, name, key) for name, key in keys.items()}
    missing = {name: views[name] for name, entry in found.items() if entry is None}
    if missing:
        found.update(build(source, stored, missing, {n: keys[n] for n in missing}, dataset=dataset, split=split,
                           root=root, workers=workers))
    return {name: CachedSource(root / entry["file"], entry["shape"], stored, source.labels)
            for name, entry in found.items()}


def fingerprint(source: Source, stored: np.ndarray) -> str:
    """A hash of what `source` holds at `stored`: files (resolved folder, paths, labels, sizes, mtimes) or
    arrays (shape, a hash of the bytes, labels)."""
    digest = hashlib.sha256()
    labels = source.labels[stored]
    if isinstance(source, FileSource):
        digest.update(str(source.base.resolve()).encode())
        for index, label in zip(stored.tolist(), labels.tolist()):
            path = source.paths[index]
            stat = (source.base / path).stat()
            digest.update(f"\n{path}\t{label}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    else:
        images = np.ascontiguousarray(source.images[stored])
        digest.update(f"{images.shape}{images.dtype}".encode())
        digest.update(hashlib.sha256(images.data).digest())
        digest.update(labels.astype(np.int64).tobytes())
    return digest.hexdigest()


def view_key(dataset: str, split: str, items: str, view: str, transform: Callable) -> str:
    parts = {"format": FORMAT_VERSION, "dataset": dataset, "split": split, "items": items, "view": view,
             "transform": repr(transform), "pil": PIL.__version__, "torchvision": torchvision.__version__}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def stem(dataset: str, split: str, view: str, key: str) -> str:
    return f"{dataset}-{split}-{view}-{key}"


def read_sidecar(root: Path, dataset: str, split: str, view: str, key: str) -> dict | None:
    """The sidecar of a complete cached view with this key, else None."""
    meta = root / f"{stem(dataset, split, view, key)}.json"
    try:
        entry = json.loads(meta.read_text())
        complete = entry["key"] == key and (root / entry["file"]).stat().st_size == int(np.prod(entry["shape"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return entry if complete else None


class _Decode(Dataset):
    """Source images at `stored`, each decoded once and passed through every view's transform."""

    def __init__(self, source: Source, stored: np.ndarray, transforms: Sequence[Callable]):
        self.source, self.stored, self.transforms = source, stored, list(transforms)

    def __len__(self) -> int:
        return len(self.stored)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        image = self.source.load(int(self.stored[i]))
        return tuple(tf(image).as_subclass(torch.Tensor) for tf in self.transforms)


def build(source: Source, stored: np.ndarray, views: dict[str, Callable], keys: dict[str, str], *, dataset: str,
          split: str, root: Path, workers: int) -> dict[str, dict]:
    """Decode `stored` once, write each view's file and sidecar (temporary names, then renamed)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the decoded-image cache folder {root} ({error.strerror}); point "
                        "data.cache_dir at a writable folder") from None
    started = time.perf_counter()
    names = list(views)
    first = _Decode(source, stored[:1], [views[n] for n in names])[0]
    shapes = {n: (len(stored), *t.shape) for n, t in zip(names, first)}
    for name, shape in shapes.items():
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"cache view {name!r} must give uint8 [3, H, W] images, got {shape[1:]}")
    print(f"building the decoded-image cache of {dataset} {split} ({', '.join(names)}; {len(stored)} images, "
          f"{sum(int(np.prod(s)) for s in shapes.values()) / 2**20:.0f} MiB) in {root}", file=sys.stderr, flush=True)
    tag = f".{os.getpid()}.tmp"
    files = {n: root / f"{stem(dataset, split, n, keys[n])}.u8" for n in names}
    arrays = {n: np.memmap(str(files[n]) + tag, np.uint8, "w+", shape=shapes[n]) for n in names}
    loader = DataLoader(_Decode(source, stored, [views[n] for n in names]), batch_size=BUILD_BATCH,
                        num_workers=build_workers(workers, len(stored)))
    start = 0
    for batch in loader:
        for name, images in zip(names, batch):
            if tuple(images.shape[1:]) != shapes[name][1:]:
                raise UserError(f"cache view {name!r} of {dataset} gives images of different sizes "
                                f"({tuple(images.shape[1:])} and {shapes[name][1:]}); set data.cache=off")
            arrays[name][start:start + len(images)] = images.numpy()
        start += len(batch[0])
    entries = {}
    for name in names:
        arrays[name].flush()
        del arrays[name]
        os.replace(str(files[name]) + tag, files[name])
        entry = {"key": keys[name], "file": files[name].name, "shape": list(shapes[name]), "dataset": dataset,
                 "split": split, "view": name, "transform": repr(views[name]), "format": FORMAT_VERSION,
                 "build_s": round(time.perf_counter() - started, 2)}
        meta = root / f"{stem(dataset, split, name, keys[name])}.json"
        Path(str(meta) + tag).write_text(json.dumps(entry, indent=1))
        os.replace(str(meta) + tag, meta)
        entries[name] = entry
    return entries


def build_workers(requested: int, count: int) -> int:
    """Decode workers for a build: the trial's loader workers; on the CPU default of none, one per thread torch
    may use (at most 8) for builds of at least PARALLEL_BUILD_MIN images."""
    if requested > 0 or count < PARALLEL_BUILD_MIN:
        return max(0, requested)
    return min(8, torch.get_num_threads()) if torch.get_num_threads() > 1 else 0
