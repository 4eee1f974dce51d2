"""The data-set registry: name -> builder(cfg, root) -> SourceData (docs/protocol.md §1)."""

from __future__ import annotations

from collections.abc import Callable

from janus.data.cifar import build_cifar100
from janus.data.digits import build_digits
from janus.data.domainnet import build_domainnet
from janus.data.fashion_mnist import build_fashion_mnist
from janus.data.imagenet100 import build_imagenet100
from janus.data.imagenet_r import build_imagenet_r
from janus.data.synthetic import build_synthetic
from janus.errors import UserError

DATASETS: dict[str, Callable] = {
    "cifar100": build_cifar100,
    "imagenet-r": build_imagenet_r,
    "imagenet100": build_imagenet100,
    "domainnet": build_domainnet,
    "digits": build_digits,
    "fashion-mnist": build_fashion_mnist,
    "synthetic": build_synthetic,
}


def get_builder(name: str) -> Callable:
    """The builder registered under `name`; an unknown name is a UserError listing the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None
