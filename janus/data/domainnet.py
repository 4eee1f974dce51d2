"""DomainNet, official release layout (docs/protocol.md §1.4, project rule).

`<root>/domainnet/<domain>/<class>/*.jpg` with the official lists `<root>/domainnet/<domain>_{train,test}.txt`,
one `<domain>/<class>/<file>.jpg <label>` per line. 345 classes pooled over the chosen domains (all six by
default; drop quickdraw to approximate the CODA-Prompt split). Labels are the lists' ids.
"""

from __future__ import annotations

from pathlib import Path

from janus.data.roots import missing, require_dir
from janus.data.sources import FileSource, SourceData
from janus.errors import UserError

DOMAINS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
LAYOUT = "domainnet/<domain>/<class>/*.jpg plus domainnet/<domain>_{train,test}.txt (the official release)"


def build_domainnet(cfg, root: Path) -> SourceData:
    """Pool the chosen domains' official train and test lists."""
    base = require_dir(root / "domainnet", "DomainNet", LAYOUT, root)
    domains = check_domains(cfg.domains)
    train_paths, train_labels = read_lists(base, domains, "train", root)
    test_paths, test_labels = read_lists(base, domains, "test", root)
    names = class_names(train_paths + test_paths, train_labels + test_labels)
    return SourceData(
        name="domainnet",
        class_names=names,
        train=FileSource(base, train_paths, train_labels),
        test=FileSource(base, test_paths, test_labels),
        style="imagenet",
        crop_scale=tuple(cfg.domainnet_crop_scale),
        info={"source": str(base), "domains": list(domains), "label_mapping": "official list labels"},
    )


def check_domains(domains) -> tuple[str, ...]:
    """Validate the domain names; order kept, duplicates removed."""
    domains = tuple(dict.fromkeys(domains))
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown or not domains:
        problem = f"unknown DomainNet domains {unknown}" if unknown else "no DomainNet domains given"
        raise UserError(f"{problem}; choose from: {', '.join(DOMAINS)}")
    return domains


def read_lists(base: Path, domains: tuple[str, ...], split: str, root: Path) -> tuple[list[str], list[int]]:
    """Concatenate `<domain>_<split>.txt` of every domain, in the given domain order."""
    paths: list[str] = []
    labels: list[int] = []
    for domain in domains:
        listing = base / f"{domain}_{split}.txt"
        if not listing.is_file():
            raise missing(f"DomainNet list {listing.name}", listing, LAYOUT, root)
        for number, line in enumerate(listing.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise UserError(f"{listing}:{number}: expected `<domain>/<class>/<file> <label>`, got {line!r}")
            paths.append(inside(base, parts[0], f"{listing}:{number}"))
            labels.append(int(parts[1]))
    return paths, labels


def inside(base: Path, relative: str, where: str) -> str:
    """`relative` if it names a file below `base` (no absolute paths, no `..` out of it); else a UserError."""
    resolved = (base / relative).resolve()
    if Path(relative).is_absolute() or not resolved.is_relative_to(base.resolve()):
        raise UserError(f"{where}: {relative!r} points outside the data set folder {base}; list files name "
                        "images relative to it (`<domain>/<class>/<file> <label>`)")
    return relative


def class_names(paths: list[str], labels: list[int]) -> tuple[str, ...]:
    """Class name of each label (the `<class>` folder); every label 0..C-1 must occur, with one name."""
    names: dict[int, str] = {}
    for path, label in zip(paths, labels):
        name = Path(path).parts[-2]
        if names.setdefault(label, name) != name:
            raise UserError(f"DomainNet lists give label {label} to two classes ({names[label]}, {name})")
    count = max(names) + 1 if names else 0
    absent = [c for c in range(count) if c not in names]
    if not names or absent or min(names) < 0:
        raise UserError(f"DomainNet lists must use every label 0..C-1; missing {absent[:5]} (C = {count})")
    return tuple(names[c] for c in range(count))
