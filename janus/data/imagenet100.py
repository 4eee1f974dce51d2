"""ImageNet-100 in the ImageNet-1k folder layout (docs/protocol.md §1.5, project rule).

Looks for `<root>/imagenet100/{train,val}/<wnid>/` first, then a full ImageNet tree `<root>/imagenet/{train,val}`
(val must be sorted into wnid folders too). Classes: the first 100 wnids of `train/` in sorted order, which on a
full ImageNet-1k tree is the PODNet subset n01440764 ... n01855672, or the wnids of a user class-list file
(one per line, `#` comments allowed) in file order. Label = position in that list; the test split is `val/`.
"""

from __future__ import annotations

from pathlib import Path

from janus.data.folders import class_dirs, list_classes
from janus.data.roots import missing
from janus.data.sources import FileSource, SourceData
from janus.errors import UserError

LAYOUT = "imagenet100/{train,val}/<wnid>/*.JPEG (or a full ImageNet-1k tree imagenet/{train,val}/<wnid>/)"
SUBSET_SIZE = 100
CANDIDATES = ("imagenet100", "imagenet")


def build_imagenet100(cfg, root: Path) -> SourceData:
    """The 100 classes (default PODNet subset or `cfg.class_list`) with all their train and val images."""
    base = find_tree(root)
    available = class_dirs(base / "train")
    wnids = read_class_list(Path(cfg.class_list).expanduser()) if cfg.class_list else available[:SUBSET_SIZE]
    for split in ("train", "val"):
        absent = [w for w in wnids if not (base / split / w).is_dir()]
        if absent:
            raise UserError(f"ImageNet-100: {len(absent)} classes have no folder in {base / split} "
                            f"(first: {absent[0]}); expected {LAYOUT}")
    train_paths, train_labels = list_classes(base / "train", wnids)
    test_paths, test_labels = list_classes(base / "val", wnids)
    return SourceData(
        name="imagenet100",
        class_names=tuple(wnids),
        train=FileSource(base / "train", train_paths, train_labels),
        test=FileSource(base / "val", test_paths, test_labels),
        style="imagenet",
        info={"source": str(base), "class_list": cfg.class_list or "first 100 sorted wnids (PODNet subset)",
              "label_mapping": "position in the class list"},
    )


def find_tree(root: Path) -> Path:
    """The first candidate folder under `root` that has both train/ and val/."""
    for name in CANDIDATES:
        base = root / name
        if (base / "train").is_dir() and (base / "val").is_dir():
            return base
    raise missing("ImageNet-100", root / CANDIDATES[0], LAYOUT, root)


def read_class_list(path: Path) -> list[str]:
    """wnids, one per line, in file order; blank lines and `#` comments skipped; duplicates rejected."""
    if not path.is_file():
        raise UserError(f"class list {path} not found (set --class-list to a file with one wnid per line)")
    wnids = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    wnids = [w for w in wnids if w]
    if not wnids:
        raise UserError(f"class list {path} names no classes")
    if len(set(wnids)) != len(wnids):
        raise UserError(f"class list {path} names some classes twice")
    return wnids
