"""CIFAR-100 from the official Python pickles, as torchvision downloads them (docs/protocol.md §1.2).

Layout: `<root>/cifar-100-python/{train,test,meta}`; `train`/`test` hold b"data" (uint8 N×3072, channel-major
32×32) and b"fine_labels"; `meta` holds b"fine_label_names".
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from janus.data.roots import missing, require_dir
from janus.data.sources import ArraySource, SourceData
from janus.errors import UserError

LAYOUT = "cifar-100-python/{train,test,meta} (the official CIFAR-100 python version)"


def build_cifar100(cfg, root: Path) -> SourceData:
    """Load both splits of CIFAR-100 into memory; class names from `meta`."""
    base = require_dir(root / "cifar-100-python", "CIFAR-100", LAYOUT, root)
    for name in ("train", "test", "meta"):
        if not (base / name).is_file():
            raise missing("CIFAR-100", base / name, LAYOUT, root)
    meta = _unpickle(base / "meta")
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"fine_label_names"])
    train, test = _load_split(base / "train"), _load_split(base / "test")
    return SourceData(
        name="cifar100",
        class_names=names,
        train=train,
        test=test,
        style="cifar",
        info={"source": str(base), "label_mapping": "cifar fine_labels"},
    )


def _load_split(path: Path) -> ArraySource:
    """One pickle -> uint8 images N×32×32×3 and fine labels."""
    entry = _unpickle(path)
    data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return ArraySource(np.ascontiguousarray(data), entry[b"fine_labels"])


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, OSError) as error:
        raise UserError(f"{path} is not a CIFAR-100 python pickle ({type(error).__name__}); replace it with the "
                        f"official file ({LAYOUT})") from None
    if not isinstance(entry, dict):
        raise UserError(f"{path} is not a CIFAR-100 python pickle (holds {type(entry).__name__}); replace it "
                        f"with the official file ({LAYOUT})")
    return entry
