"""Transforms of docs/protocol.md §4: sizes, value range, crop scale, normalisation switch."""

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from janus.data.transforms import build_transforms
from janus.errors import UserError


def test_imagenet_style_resizes_then_center_crops():
    train, test = build_transforms("imagenet", 224)
    assert isinstance(test.transforms[0], v2.Resize) and test.transforms[0].size == [256]
    assert isinstance(test.transforms[1], v2.CenterCrop) and test.transforms[1].size == (224, 224)
    crop = train.transforms[0]
    assert isinstance(crop, v2.RandomResizedCrop) and crop.scale == (0.08, 1.0) and crop.size == (224, 224)
    assert isinstance(train.transforms[1], v2.RandomHorizontalFlip)
    image = Image.new("RGB", (50, 30), (255, 0, 128))
    for tf in (train, test):
        x = tf(image)
        assert x.shape == (3, 224, 224) and x.dtype == torch.float32
        assert torch.allclose(x.mean(dim=(1, 2)), torch.tensor([1.0, 0.0, 128 / 255]), atol=0.01)


def test_cifar_style_test_is_plain_resize():
    _, test = build_transforms("cifar", 64)
    assert isinstance(test.transforms[0], v2.Resize) and test.transforms[0].size == [64]
    assert not any(isinstance(t, v2.CenterCrop) for t in test.transforms)
    assert test(Image.new("RGB", (32, 32))).shape == (3, 64, 64)


def test_small_sizes_keep_the_256_over_224_ratio():
    _, test = build_transforms("imagenet", 32)
    assert test.transforms[0].size == [36]  # 32 * 256 // 224


def test_crop_scale_flag_and_tensor_style():
    train, test = build_transforms("tensor", 16, crop_scale=(0.7, 1.0))
    assert train.transforms[0].scale == (0.7, 1.0)
    x = torch.rand(3, 16, 16)
    assert torch.equal(test(x), x)
    assert train(x).shape == (3, 16, 16)


def test_normalization_switch():
    mean_std = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    _, test = build_transforms("tensor", 4, "backbone", mean_std)
    assert torch.allclose(test(torch.ones(3, 4, 4)), torch.ones(3, 4, 4))
    assert torch.allclose(test(torch.zeros(3, 4, 4)), -torch.ones(3, 4, 4))
    with pytest.raises(UserError, match="mean/std"):
        build_transforms("tensor", 4, "backbone", None)
    with pytest.raises(UserError, match="choose one of: none, backbone"):
        build_transforms("tensor", 4, "imagenet")


def test_digits_train_transform_keeps_the_label_no_flip_mild_crop():
    """A mirrored digit is another digit: the digits data set trains without flips and with crops >= 80 %."""
    from janus.config import DataConfig
    from janus.data import build_scenario

    scenario = build_scenario(DataConfig(dataset="digits", tasks=5, image_size=32), seed=0)
    steps = scenario.tasks[0].train.transform.transforms
    names = [type(t).__name__ for t in steps]
    assert "RandomHorizontalFlip" not in names
    crop = next(t for t in steps if type(t).__name__ == "RandomResizedCrop")
    assert tuple(crop.scale) == (0.8, 1.0)
