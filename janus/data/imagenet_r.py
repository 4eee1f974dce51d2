"""ImageNet-R from the original, unsplit `<root>/imagenet-r/<wnid>/*.jpg` tree (docs/protocol.md §1.3, project rule).

Labels are always ImageFolder ids (index of the wnid in sorted order), which the InfLoRA-family identity order
needs (§2). The train/test split comes from either
* a user split file: the CODA-Prompt YAML pair (`data: [paths]`, `targets: [labels]`; the test file is the
  train file's name with "train" -> "test", or a folder holding `imagenet-r_{train,test}.yaml`), or a JSON
  split written by this module. YAML label ids are not ImageFolder ids: each is checked to name one wnid, and
  the mapping is recorded in `info["split_label_to_imagefolder"]`; or
* a per-class stratified 80/20 split drawn once from `split_seed` and written to
  `<root>/imagenet-r/split_seed<seed>.json` (relative paths per split), reused by every later run. If the data
  folder is read-only the file goes to the cache folder instead, with a warning.
Files are never moved.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import yaml

from janus.data.folders import class_dirs, list_classes
from janus.data.roots import cache_dir, cache_key, require_dir
from janus.data.sources import FileSource, SourceData
from janus.data.splits import STREAM_DATASET_SPLIT, stratified_split
from janus.errors import UserError

LAYOUT = "imagenet-r/<wnid>/*.jpg (the unsplit ImageNet-R release, 200 wnid folders)"
TEST_FRACTION = 0.2
SPLIT_FORMAT = "janus-split-v1"


def build_imagenet_r(cfg, root: Path) -> SourceData:
    """List the tree, apply the split (user file or the seeded one), return file sources with ImageFolder ids."""
    base = require_dir(root / "imagenet-r", "ImageNet-R", LAYOUT, root)
    wnids = class_dirs(base)
    paths, labels = list_classes(base, wnids)
    if not paths:
        raise UserError(f"ImageNet-R at {base} holds no images: expected {LAYOUT}")
    if cfg.split_file:
        train, test, info = read_split_file(Path(cfg.split_file).expanduser(), wnids)
    else:
        train, test, info = load_or_create_split(base, paths, labels, int(cfg.split_seed))
    _check_listed(train + test, set(paths), base, info["split_file"])
    index = {w: i for i, w in enumerate(wnids)}
    return SourceData(
        name="imagenet-r",
        class_names=tuple(wnids),
        train=FileSource(base, train, [index[p.split("/")[0]] for p in train]),
        test=FileSource(base, test, [index[p.split("/")[0]] for p in test]),
        style="imagenet",
        info={"source": str(base), "label_mapping": "imagefolder (sorted wnid)", **info},
    )


def split_path(base: Path, seed: int) -> Path:
    """Where the seeded split lives beside the data."""
    return base / f"split_seed{seed}.json"


def cached_split_path(base: Path, seed: int) -> Path:
    """Where the seeded split lives when the data folder is read-only."""
    return cache_dir() / "splits" / f"imagenet-r_{cache_key(base)}_split_seed{seed}.json"


def load_or_create_split(base: Path, paths: list[str], labels: list[int], seed: int):
    """Reuse the written split for `seed` if one exists, else draw it, write it and return it."""
    for candidate in (split_path(base, seed), cached_split_path(base, seed)):
        if candidate.is_file():
            split = _read_json(candidate)
            return split["train"], split["test"], {"split_file": str(candidate), "split_created": False}
    train, test = make_split(paths, labels, seed)
    payload = {"format": SPLIT_FORMAT, "dataset": "imagenet-r", "seed": seed, "test_fraction": TEST_FRACTION,
               "stratified": "per class", "train": train, "test": test}
    target = split_path(base, seed)
    try:
        write_json_atomic(target, payload)
    except OSError as err:
        target = cached_split_path(base, seed)
        warnings.warn(f"ImageNet-R folder {base} is not writable ({err.strerror}); split written to {target}")
        try:
            write_json_atomic(target, payload)
        except OSError as cache_err:
            raise UserError(f"cannot write the ImageNet-R split beside the data ({base}) nor to {target} "
                            f"({cache_err.strerror}); set env JANUS_CACHE to a writable folder") from None
    return train, test, {"split_file": str(target), "split_created": True}


def make_split(paths: list[str], labels: list[int], seed: int) -> tuple[list[str], list[str]]:
    """Per-class stratified split: round(0.2·n) test images per class (at least one), the rest train."""
    train_idx, test_idx = stratified_split(np.asarray(labels), TEST_FRACTION, seed, STREAM_DATASET_SPLIT)
    return [paths[i] for i in train_idx], [paths[i] for i in test_idx]


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write through a temporary file and rename, so a concurrent reader never sees half a split."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=0)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_split_file(path: Path, wnids: list[str]):
    """A user split: our JSON, or a CODA-Prompt YAML pair. Returns (train, test, info)."""
    if path.suffix == ".json":
        split = _read_json(path)
        return split["train"], split["test"], {"split_file": str(path), "split_created": False}
    train_file, test_file = yaml_pair(path)
    train, train_y = read_coda_yaml(train_file)
    test, test_y = read_coda_yaml(test_file)
    mapping = label_mapping(train + test, train_y + test_y, wnids, train_file)
    info = {"split_file": f"{train_file},{test_file}", "split_created": False,
            "split_label_to_imagefolder": mapping}
    return train, test, info


def yaml_pair(path: Path) -> tuple[Path, Path]:
    """The (train, test) YAML files named by `path`: a folder, or the train file itself."""
    if path.is_dir():
        pair = (path / "imagenet-r_train.yaml", path / "imagenet-r_test.yaml")
    elif path.suffix in (".yaml", ".yml") and "train" in path.name:
        head, _, tail = path.name.rpartition("train")
        pair = (path, path.with_name(f"{head}test{tail}"))
    else:
        raise UserError(f"split file {path}: expected a .json split, a CODA-Prompt *train*.yaml "
                        "(its *test*.yaml beside it) or a folder holding imagenet-r_{train,test}.yaml")
    for file in pair:
        if not file.is_file():
            raise UserError(f"split file {file} not found (set --split-file to the CODA-Prompt train yaml)")
    return pair


def read_coda_yaml(path: Path) -> tuple[list[str], list[int]]:
    """Read `data`/`targets`; paths become `<wnid>/<file>` (CODA writes `data/imagenet-r/<wnid>/<file>`)."""
    with open(path) as f:
        content = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(content, dict) or "data" not in content or "targets" not in content:
        raise UserError(f"split file {path}: expected the CODA-Prompt format with `data:` and `targets:` lists")
    data, targets = list(content["data"]), [int(t) for t in content["targets"]]
    if len(data) != len(targets):
        raise UserError(f"split file {path}: {len(data)} paths but {len(targets)} targets")
    return ["/".join(Path(p).parts[-2:]) for p in data], targets


def label_mapping(paths: list[str], labels: list[int], wnids: list[str], where: Path) -> dict[int, int]:
    """Map each split-file label to the ImageFolder id of the one wnid it names; error if it names several."""
    index = {w: i for i, w in enumerate(wnids)}
    mapping: dict[int, int] = {}
    for path, label in zip(paths, labels):
        wnid = path.split("/")[0]
        if wnid not in index:
            raise UserError(f"split file {where} names class folder {wnid!r}, which is not in the ImageNet-R tree")
        if mapping.setdefault(label, index[wnid]) != index[wnid]:
            raise UserError(f"split file {where}: label {label} is used for two classes "
                            f"({wnids[mapping[label]]} and {wnid})")
    return dict(sorted(mapping.items()))


def _check_listed(listed: list[str], present: set[str], base: Path, split_file: str) -> None:
    """Every file a split names must exist; a stale split must fail loudly, not train on fewer images."""
    absent = [p for p in listed if p not in present]
    if absent:
        raise UserError(f"split {split_file} lists {len(absent)} images missing from {base} "
                        f"(first: {absent[0]}); restore the files or choose another --split-file/--split-seed")
    if len(set(listed)) != len(listed):
        raise UserError(f"split {split_file} lists some images more than once (or in both train and test)")


def _read_json(path: Path) -> dict:
    with open(path) as f:
        split = json.load(f)
    if not isinstance(split, dict) or "train" not in split or "test" not in split:
        raise UserError(f"split file {path}: expected a JSON object with `train` and `test` path lists")
    return split
