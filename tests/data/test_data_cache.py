"""The decoded-image cache (janus.data.cache): build, hit, invalidation, batches equal to the uncached ones."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from janus.data import build_scenario, make_device_loader, make_loader
from janus.data.cache import CachedSource, open_views
from janus.data.device import ResidentLoader
from janus.data.sources import FileSource
from janus.data.transforms import cache_views
from janus.testing import write_imagenet_r_tree

MEAN_STD = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.5))


def scenario(fx, tmp_path, **kw):
    base = {"dataset": "imagenet-r", "root": str(tmp_path), "tasks": 2, "val_fraction": 0.2,
            "normalization": "backbone"}
    base.update(kw)
    return build_scenario(fx.config(**base), seed=0, mean_std=MEAN_STD)


def cached(fx, tmp_path, **kw):
    return scenario(fx, tmp_path, cache="on", cache_dir=str(tmp_path / "cache"), **kw)


def cache_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache").glob("*.u8"))


def batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def same_batches(a, b):
    return len(a) == len(b) and all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))


def test_build_writes_views_then_a_second_build_decodes_nothing(fx, tmp_path, monkeypatch):
    write_imagenet_r_tree(tmp_path, 4, 6)
    first = cached(fx, tmp_path)
    names = cache_files(tmp_path)
    assert len(names) == 3   # train split: train + eval views; test split: eval view
    meta = {p.name: json.loads(p.read_text()) for p in (tmp_path / "cache").glob("*.json")}
    train_view = next(m for m in meta.values() if m["split"] == "train" and m["view"] == "train")
    assert train_view["shape"] == [24 - len(first.tasks[0].test) - len(first.tasks[1].test), 3, 18, 18]  # S=16·256//224
    eval_view = next(m for m in meta.values() if m["split"] == "test")
    assert eval_view["shape"][1:] == [3, 16, 16]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()}

    def no_decode(self, index):
        raise AssertionError("a cache hit must not decode")

    monkeypatch.setattr(FileSource, "load", no_decode)
    second = cached(fx, tmp_path)
    assert cache_files(tmp_path) == names
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()} == stamps
    assert isinstance(second.tasks[0].test.source, CachedSource)
    assert torch.equal(second.tasks[1].test[0][0], first.tasks[1].test[0][0])


def test_resolution_or_transform_change_rebuilds(fx, tmp_path):
    write_imagenet_r_tree(tmp_path, 4, 6)
    cached(fx, tmp_path)
    before = set(cache_files(tmp_path))
    cached(fx, tmp_path, image_size=20)
    after = set(cache_files(tmp_path))
    assert len(after - before) == 3 and before <= after   # new keys; old entries stay until deleted

    source = FileSource(tmp_path / "imagenet-r", ["n00000000/0000.jpg", "n00000000/0001.jpg"], [0, 0])
    root = tmp_path / "direct"
    views = cache_views("imagenet", 16)
    plain = open_views(source, np.arange(2), {"eval": views["eval"]}, dataset="d", split="s", root=root)["eval"]
    nearest = v2.Compose([v2.Resize(18, interpolation=v2.InterpolationMode.NEAREST), v2.CenterCrop(16),
                          v2.ToImage()])
    other = open_views(source, np.arange(2), {"eval": nearest}, dataset="d", split="s", root=root)["eval"]
    assert plain.path != other.path and len(list(root.glob("*.u8"))) == 2
    assert not torch.equal(plain.load(0), other.load(0))
    expected = nearest(source.load(1)).as_subclass(torch.Tensor)
    assert torch.equal(other.load(1), expected)


def test_a_changed_image_file_rebuilds(fx, tmp_path):
    write_imagenet_r_tree(tmp_path, 4, 6)
    source = FileSource(tmp_path / "imagenet-r", ["n00000000/0000.jpg"], [0])
    views = {"eval": cache_views("imagenet", 16)["eval"]}
    first = open_views(source, np.arange(1), views, dataset="d", split="s", root=tmp_path / "c")["eval"]
    Image.new("RGB", (30, 30), (10, 200, 30)).save(tmp_path / "imagenet-r" / "n00000000" / "0000.jpg")
    second = open_views(source, np.arange(1), views, dataset="d", split="s", root=tmp_path / "c")["eval"]
    assert first.path != second.path
    assert second.load(0).float().mean(dim=(1, 2)).round().tolist() == pytest.approx([10, 200, 30], abs=3)


def test_cached_eval_batches_equal_uncached_ones(fx, tmp_path):
    write_imagenet_r_tree(tmp_path, 4, 6)
    plain, fast = scenario(fx, tmp_path), cached(fx, tmp_path)
    uint8 = cached(fx, tmp_path, uint8_transfer="on")
    for t in range(2):
        for split in ("test", "val", "train_eval"):
            a, b = getattr(plain.tasks[t], split), getattr(fast.tasks[t], split)
            expected = batches(make_loader(a, 4, shuffle=True, seed=5))
            assert same_batches(expected, batches(make_loader(b, 4, shuffle=True, seed=5)))
            on_device = make_device_loader(getattr(uint8.tasks[t], split), 4, True, torch.device("cpu"), seed=5)
            assert same_batches(expected, batches(on_device))   # /255 and normalise on the device: bitwise


def test_cifar_cached_train_batches_equal_uncached_ones(fx, tmp_path):
    """CIFAR's train view is the stored image itself, so the loader's crop sees the same pixels."""
    fx.make_cifar(tmp_path)
    base = {"dataset": "cifar100", "root": str(tmp_path), "tasks": 2, "image_size": 24}
    plain = build_scenario(fx.config(**base), seed=0)
    fast = build_scenario(fx.config(**base, cache="on", cache_dir=str(tmp_path / "cache")), seed=0)
    torch.manual_seed(7)
    expected = batches(make_loader(plain.tasks[1].train, 4, shuffle=True, seed=3))
    torch.manual_seed(7)
    assert same_batches(expected, batches(make_loader(fast.tasks[1].train, 4, shuffle=True, seed=3)))
    assert fast.tasks[1].train.source.shape[1:] == (3, 32, 32)


def test_tensor_data_is_not_cached(fx, tmp_path):
    digits = build_scenario(fx.config(dataset="digits", tasks=2, image_size=8, cache="on",
                                      cache_dir=str(tmp_path / "cache")), seed=0)
    assert not (tmp_path / "cache").exists() and "cache" not in digits.info
    assert digits.tasks[0].train.device_stage is None


def test_build_with_workers_writes_the_same_bytes(fx, tmp_path):
    write_imagenet_r_tree(tmp_path, 4, 6)
    source = FileSource(tmp_path / "imagenet-r", [f"n0000000{c}/{i:04d}.jpg" for c in range(4) for i in range(6)],
                        [c for c in range(4) for _ in range(6)])
    views = cache_views("imagenet", 16)
    one = open_views(source, np.arange(24), views, dataset="d", split="s", root=tmp_path / "a")
    two = open_views(source, np.arange(24), views, dataset="d", split="s", root=tmp_path / "b", workers=2)
    for name in views:
        assert one[name].path.read_bytes() == two[name].path.read_bytes()


@pytest.mark.parametrize("workers", [0, 1])
def test_resident_loader_keeps_make_loaders_batch_order(fx, tmp_path, workers):
    """A view in device memory (here: CPU memory) is served by index in the order make_loader gives,
    epoch after epoch, with and without (persistent) workers."""
    write_imagenet_r_tree(tmp_path, 4, 6)
    fast = cached(fx, tmp_path, augment_on="device")
    datasets = [fast.tasks[1].train, torch.utils.data.ConcatDataset([fast.tasks[0].test, fast.tasks[1].val])]
    for dataset in datasets:
        loader = make_loader(dataset, 3, shuffle=True, seed=11, num_workers=workers)
        expected = [batches(loader) for _ in range(3)]
        for part in getattr(dataset, "datasets", [dataset]):
            part.source.to_device(torch.device("cpu"))
        resident = ResidentLoader(dataset, 3, shuffle=True, seed=11, persistent=workers > 0)
        assert len(resident) == len(loader)
        assert all(same_batches(e, batches(resident)) for e in expected)
        assert isinstance(make_device_loader(dataset, 3, True, torch.device("cpu"), seed=11).loader, ResidentLoader)
        for part in getattr(dataset, "datasets", [dataset]):
            part.source.resident = None


def test_gpu_placement_takes_untransformed_views_that_fit(fx, tmp_path, monkeypatch):
    """On CUDA a view goes to GPU memory when nothing transforms it on the CPU and it fits in the share of
    free memory (faked here: no GPU); a loader-augmented train view always stays memory-mapped."""
    import janus.data.feeds as feeds_module

    write_imagenet_r_tree(tmp_path, 4, 6)
    monkeypatch.setattr(CachedSource, "to_device", lambda self, device: None)
    for augment_on, free, expected in (("device", 10**9, ["train", "eval", "test"]),
                                       ("loader", 10**9, ["eval", "test"]),
                                       ("device", 2 * 10**4, ["test"])):   # 6000 B: only the 4-image test view
        monkeypatch.setattr(feeds_module, "free_gpu_bytes", lambda device, free=free: free)
        base = {"dataset": "imagenet-r", "root": str(tmp_path), "tasks": 2, "val_fraction": 0.2, "cache": "on",
                "cache_dir": str(tmp_path / "cache"), "augment_on": augment_on}
        on_cuda = build_scenario(fx.config(**base), seed=0, device="cuda")
        assert on_cuda.info["cache_resident"] == expected and on_cuda.info["uint8_transfer"] is True
    assert build_scenario(fx.config(**base), seed=0).info["cache_resident"] == []   # the CPU: never
