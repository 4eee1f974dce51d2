"""The device side of the data path (janus.data.device) and its config: augmentation, conversion, wiring."""

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from janus.config import DataConfig, ExperimentConfig
from janus.data import build_scenario, make_device_loader, make_loader
from janus.data.device import AugmentSpec, DeviceAugment, DeviceLoader, DeviceStage
from janus.errors import UserError
from janus.testing import write_imagenet_r_tree

MEAN_STD = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.5))


def test_boxes_stay_inside_and_follow_scale_and_ratio():
    spec = AugmentSpec(size=8, scale=(0.3, 0.6))
    boxes, flips = DeviceAugment(spec, seed=0).params(2000, 40, 30)
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 40).all() and (left + w <= 30).all()
    area = (h * w).double() / (40 * 30)
    assert area.min() >= 0.3 * 0.9 and area.max() <= 0.6 * 1.1   # rounding of w and h aside
    ratio = (w / h).double()
    assert ratio.min() >= 3 / 4 * 0.85 and ratio.max() <= 4 / 3 * 1.15
    assert 0.45 < flips.double().mean() < 0.55 and area.std() > 0.05


def test_fallback_is_torchvisions_central_crop():
    """Scales that never fit (area > image) fall back to the centre, clamped to the ratio range."""
    boxes, _ = DeviceAugment(AugmentSpec(size=4, scale=(5.0, 6.0)), seed=0).params(3, 10, 40)
    assert boxes.tolist() == [[0, 13, 10, 13]] * 3   # w = round(10·4/3) = 13, centred in 40


def test_same_seed_same_output_and_no_flip_when_disabled():
    x = torch.rand(16, 3, 20, 24)
    a = DeviceAugment(AugmentSpec(size=12), seed=4)(x)
    b = DeviceAugment(AugmentSpec(size=12), seed=4)(x)
    c = DeviceAugment(AugmentSpec(size=12), seed=5)(x)
    assert a.shape == (16, 3, 12, 12) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    _, flips = DeviceAugment(AugmentSpec(size=12, flip=False), seed=4).params(500, 20, 24)
    assert not flips.any()


def test_full_box_is_the_identity_and_flip_mirrors():
    x = torch.rand(8, 3, 10, 10)
    spec = AugmentSpec(size=10, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    _, flips = DeviceAugment(spec, seed=1).params(8, 10, 10)
    out = DeviceAugment(spec, seed=1)(x)
    expected = torch.where(flips.view(-1, 1, 1, 1), x.flip(-1), x)
    assert flips.any() and not flips.all()
    assert torch.allclose(out, expected, atol=1e-6, rtol=0)   # bilinear at pixel centres: rounding only


def test_crop_of_one_half_matches_that_half():
    """A box over the left half resized to its own size returns the left half (aligned roi coordinates)."""
    x = torch.rand(1, 3, 6, 12)
    augment = DeviceAugment(AugmentSpec(size=6, scale=(0.5, 0.5), ratio=(1.0, 1.0), flip=False), seed=0)
    boxes, _ = augment.params(1, 6, 12)
    top, left, h, w = boxes[0].tolist()
    augment.generator.manual_seed(0)   # the call below draws the same box
    out = augment(x)
    assert (h, w) == (6, 6)
    assert torch.allclose(out[0], x[0, :, top:top + 6, left:left + 6], atol=1e-6, rtol=0)


def test_device_loader_converts_uint8_like_the_transform_and_passes_floats_through():
    images = torch.randint(0, 256, (5, 3, 7, 7), dtype=torch.uint8)
    labels = torch.arange(5)
    transform = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(*MEAN_STD)])
    loader = DeviceLoader([(images, labels)], torch.device("cpu"), DeviceStage(MEAN_STD))
    (x, y), = list(loader)
    assert torch.equal(x, torch.stack([transform(i) for i in images])) and torch.equal(y, labels)  # bitwise
    floats = torch.rand(5, 3, 7, 7)
    (x, _), = list(DeviceLoader([(floats, labels)], torch.device("cpu"), DeviceStage(MEAN_STD)))
    assert x is floats or torch.equal(x, floats)
    (x, _), = list(DeviceLoader([(floats, labels)], torch.device("cpu"), None, channels_last=True))
    assert x.is_contiguous(memory_format=torch.channels_last) and torch.equal(x, floats)


def test_uint8_transfer_gives_the_float_paths_batches(fx, tmp_path):
    """Without the cache, uint8 transfer only moves ToDtype + Normalize to the device: same batches, bitwise,
    also for training (the PIL crop in the loader is unchanged)."""
    write_imagenet_r_tree(tmp_path, 4, 6)
    base = {"dataset": "imagenet-r", "root": str(tmp_path), "tasks": 2, "normalization": "backbone"}
    plain = build_scenario(fx.config(**base), seed=0, mean_std=MEAN_STD)
    uint8 = build_scenario(fx.config(**base, uint8_transfer="on"), seed=0, mean_std=MEAN_STD)
    assert uint8.tasks[0].train[0][0].dtype == torch.uint8 and uint8.info["uint8_transfer"] is True
    for split in ("train", "test"):
        torch.manual_seed(2)
        expected = list(make_loader(getattr(plain.tasks[1], split), 4, shuffle=True, seed=3))
        torch.manual_seed(2)
        got = list(make_device_loader(getattr(uint8.tasks[1], split), 4, True, torch.device("cpu"), seed=3))
        assert all(torch.equal(a, b) and torch.equal(ya, yb) for (a, ya), (b, yb) in zip(expected, got))


def test_device_augmentation_batches(fx, tmp_path):
    write_imagenet_r_tree(tmp_path, 4, 6)
    base = {"dataset": "imagenet-r", "root": str(tmp_path), "tasks": 2, "cache": "on",
            "cache_dir": str(tmp_path / "cache"), "augment_on": "device"}
    scenario = build_scenario(fx.config(**base), seed=0)
    train = scenario.tasks[0].train
    assert train.transform is None and train.device_stage.augment == AugmentSpec(16, (0.08, 1.0), True)
    first = list(make_device_loader(train, 4, True, torch.device("cpu"), seed=9))
    again = list(make_device_loader(train, 4, True, torch.device("cpu"), seed=9))
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, again))
    x = torch.cat([b for b, _ in first])
    assert x.shape == (len(train), 3, 16, 16) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    test = scenario.tasks[0].test   # evaluation is never augmented
    assert test.device_stage.augment is None and test[0][0].dtype == torch.uint8


def test_default_cpu_path_is_the_plain_dataloader(fx):
    from janus.experiment import config_loader

    cfg = ExperimentConfig()
    dataset = build_scenario(fx.config(dataset="digits", tasks=2, image_size=8), seed=0).tasks[0].train
    assert type(config_loader(dataset, cfg, torch.device("cpu"), shuffle=True)) is DataLoader
    assert dataset.device_stage is None
    cfg = ExperimentConfig.from_dict({"optim.channels_last": True})
    assert isinstance(config_loader(dataset, cfg, torch.device("cpu")), DeviceLoader)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"augment_on": "device"}, "--set data.cache=on"),
    ({"augment_on": "device", "cache": "on", "uint8_transfer": "off"}, "drop data.uint8_transfer=off"),
    ({"cache": "yes"}, "unknown data.cache 'yes'; use one of off, on"),
    ({"augment_on": "gpu"}, "use one of loader, device"),
    ({"uint8_transfer": "maybe"}, "use one of auto, on, off"),
    ({"cache_gpu_fraction": 1.5}, "cache_gpu_fraction must be in"),
])
def test_config_errors_name_the_fix(overrides, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        DataConfig(**overrides)
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        ExperimentConfig.from_dict({f"data.{k}": v for k, v in overrides.items()})


def test_device_augmentation_needs_image_data(fx, tmp_path):
    with pytest.raises(UserError, match="in-memory tensor data"):
        build_scenario(fx.config(dataset="digits", tasks=2, image_size=8, cache="on", augment_on="device",
                                 cache_dir=str(tmp_path)), seed=0)


def imagenet_r_config(tiny, tmp_path):
    write_imagenet_r_tree(tmp_path, 4, 8)
    return tiny(**{"data.dataset": "imagenet-r", "data.root": str(tmp_path), "data.tasks": 2,
                   "data.image_size": 32, "optim.batch_size": 8})


def test_protocol_runs_with_cache_and_device_augmentation(tiny, tmp_path):
    from janus import run_experiment

    base = imagenet_r_config(tiny, tmp_path)
    fast = run_experiment({**base, "data.cache": "on", "data.cache_dir": str(tmp_path / "cache"),
                           "data.augment_on": "device", "optim.channels_last": True})
    assert fast.acc_matrix.shape == (2, 2) and len(list((tmp_path / "cache").glob("*.u8"))) == 3
    assert np.isfinite(fast.acc_matrix[np.tril_indices(2)]).all() and not math.isnan(fast.metrics["acc"])


def test_uint8_transfer_and_eager_compile_train_the_same_numbers(tiny, tmp_path, monkeypatch):
    """uint8 to the device + normalisation there, and torch.compile (eager backend here), change no number."""
    import janus.runtime
    from janus.testing import tiny_experiment
    from janus.training import train_task

    base = {**imagenet_r_config(tiny, tmp_path), "data.normalization": "backbone"}
    monkeypatch.setattr(janus.runtime, "COMPILE_BACKEND", "eager")
    runs = []
    for overrides in ({}, {"data.uint8_transfer": "on", "optim.compile": True}):
        experiment = tiny_experiment({**base, **overrides})
        info = experiment.task_info(experiment.scenario.tasks[0])
        stats = train_task(experiment.method, info, experiment.cfg.optim, experiment.cfg.seed)
        runs.append((experiment, stats))
    (plain, plain_stats), (fast, fast_stats) = runs
    assert fast.backbone._compiled_call_impl is not None   # nn.Module.compile: in place, same state-dict keys
    assert set(fast.method.state_dict()) == set(plain.method.state_dict())
    assert fast_stats == plain_stats and plain_stats["steps"] > 0
    assert all(torch.equal(a, b) for a, b in zip(plain.method.state_dict().values(),
                                                 fast.method.state_dict().values()))


def test_compile_keeps_compiling_while_each_task_adds_lora_pairs(tiny, monkeypatch):
    """InfLoRA adds pairs every task, each a recompile; at torch's default limit (8) it fell back to eager."""
    import torch._dynamo

    import janus.runtime
    from janus import run_experiment

    monkeypatch.setattr(janus.runtime, "COMPILE_BACKEND", "eager")
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()          # the graph count below is this run's, not earlier tests'
    config = tiny(**{"method.name": "inflora", "data.tasks": 3, "data.synthetic_classes": 6, "optim.compile": True})
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):   # raises where it would fall back
        result = run_experiment(config)
    assert np.isfinite(result.acc_matrix[np.tril_indices(3)]).all()
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 8
