"""Screen image files before training: every file must exist, be non-empty and have a readable image
header; every class must keep at least one training image. With `data.skip_unreadable` the bad files are
dropped and counted instead (off by default: a damaged data set should be noticed, not silently shrunk).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image

from janus.data.sources import FileSource, SourceData
from janus.errors import UserError


def unreadable(source: FileSource) -> list[int]:
    """Indices of files that are missing, empty or not an image PIL can identify (header only, fast)."""
    bad = []
    for index, relative in enumerate(source.paths):
        path = source.base / relative
        try:
            if path.stat().st_size == 0:
                raise OSError("empty file")
            with Image.open(path):
                pass
        except (OSError, SyntaxError, ValueError):
            bad.append(index)
    return bad


def screen(data: SourceData, skip: bool) -> SourceData:
    """`data` with its file sources checked (see the module docstring); info records what was skipped."""
    skipped = {}
    splits = {}
    for split in ("train", "test"):
        source = getattr(data, split)
        if not isinstance(source, FileSource):
            continue
        bad = unreadable(source)
        if bad and not skip:
            first = source.base / source.paths[bad[0]]
            raise UserError(f"{len(bad)} unreadable image file(s) in the {data.name} {split} split, the first "
                            f"{first}; replace them, or set data.skip_unreadable=true to skip and count them")
        if bad:
            keep = np.setdiff1d(np.arange(len(source)), bad)
            splits[split] = FileSource(source.base, [source.paths[i] for i in keep], source.labels[keep])
            skipped[split] = len(bad)
    data = replace(data, **splits, info={**data.info, "skipped_unreadable": skipped}) if splits else data
    counts = np.bincount(np.asarray(data.train.labels), minlength=len(data.class_names))
    empty = [data.class_names[c] for c in np.flatnonzero(counts == 0)]
    if empty:
        raise UserError(f"{len(empty)} class(es) of {data.name} have no training image, the first {empty[0]!r} "
                        "(an empty class folder?); add its images or remove the class folder")
    return data
