"""Where the data lives, and the one-line error for data that is not there (docs/protocol.md §1)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from janus.errors import UserError

ROOT_ENV = "JANUS_DATA"
CACHE_ENV = "JANUS_CACHE"


def resolve_root(root: str | os.PathLike | None) -> Path:
    """The data root: the config's `root`, else env JANUS_DATA, else ./data."""
    chosen = root if root not in (None, "") else os.environ.get(ROOT_ENV) or "./data"
    return Path(chosen).expanduser()


def require_dir(path: Path, title: str, layout: str, root: Path) -> Path:
    """Return `path` if it is a directory, else raise a one-line UserError naming the layout and the fix."""
    if not path.is_dir():
        raise missing(title, path, layout, root)
    return path


def missing(title: str, path: Path, layout: str, root: Path) -> UserError:
    """The one-line error for a data set that is not where it should be."""
    return UserError(
        f"{title} not found at {path}: expected {layout} under the data root {root}; "
        f"point --data-root (or env {ROOT_ENV}) at the folder that holds it"
    )


def cache_dir() -> Path:
    """Writable place for generated files when the data folder is read-only: $JANUS_CACHE, else
    $XDG_CACHE_HOME/janus, else ~/.cache/janus."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "janus"


def cache_key(path: Path) -> str:
    """A short stable tag for a data folder, so cached files of two data roots never collide."""
    return hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
