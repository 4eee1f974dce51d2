import importlib
import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from janus.backbone import build_backbone
from janus.config import BackboneConfig, ExperimentConfig, LoraConfig
from janus.errors import UserError
from janus.methods import MethodContext, TaskInfo, build_options, method_class
from janus.methods.coda_prompt import component_weights
from janus.protocol import run_experiment

PARAMS = {"method.name": "coda-prompt", "method.num_components": 8}


def task(index):
    return TaskInfo(index, 2, 2 * index, 2, train_data=None, train_eval_data=None, make_loader=None)


def make_coda(tasks_started=1, **params):
    torch.manual_seed(0)
    backbone = build_backbone(BackboneConfig(name="test"), img_size=32)
    context = MethodContext(LoraConfig(), num_tasks=2, classes_per_task=(2, 2), feature_dim=64)
    options = build_options("coda-prompt", {"num_components": 8, **params})
    method = method_class("coda-prompt")(backbone, options, context)
    for index in range(tasks_started):
        method.before_task(task(index))
    return method


def images(n, seed=1):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_component_weights_equal_the_materialised_coda_formula():
    torch.manual_seed(0)
    query, keys, attention = torch.randn(3, 16), torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    for layer in range(2):  # CODA: cos(q ⊙ A_m, K_m) with the B x M x D product built explicitly
        attended = torch.einsum("bd,kd->bkd", query, attention[layer])
        expected = torch.einsum("bkd,kd->bk", F.normalize(attended, dim=2), F.normalize(keys[layer], dim=1))
        torch.testing.assert_close(component_weights(query, keys, attention)[:, layer], expected)


def test_new_slice_is_gram_schmidt_orthogonal_to_the_old_ones():
    method = make_coda()
    with torch.no_grad():  # stand-in for training: the old slice is no longer orthonormal
        for family in (method.components, method.keys, method.attention):
            family[0].add_(0.3 * torch.randn_like(family[0]))
    method.before_task(task(1))
    for family in (method.components, method.keys, method.attention):
        for layer in range(5):
            old, new = family[0][layer].flatten(1), family[1][layer].flatten(1)
            torch.testing.assert_close(new @ new.t(), torch.eye(4), atol=1e-5, rtol=0)
            torch.testing.assert_close(new @ old.t(), torch.zeros(4, 4), atol=1e-5, rtol=0)


def test_only_the_current_slice_trains_but_old_slices_shape_the_prompt():
    method = make_coda(tasks_started=2).train()
    out = method(images(3))
    method.loss(out, torch.tensor([2, 3, 2]), task(1)).backward()
    assert all(p.grad is None for p in method.slice_parameters(0))
    assert all(p.grad.abs().sum() > 0 for p in method.slice_parameters(1))
    method.eval()
    before = method(images(3)).features
    with torch.no_grad():
        method.components[0].add_(torch.randn_like(method.components[0]))
    assert not torch.allclose(method(images(3)).features, before)


def test_prediction_of_a_sample_does_not_depend_on_its_batch():
    method = make_coda(tasks_started=2).eval()
    x = images(5)
    torch.testing.assert_close(method(x[4:5]).logits[0], method(x).logits[4], atol=1e-5, rtol=1e-5)


def test_ortho_penalty_is_off_by_default_and_added_when_set():
    x = images(2)
    assert make_coda().train()(x).extra["prompt_loss"] is None
    assert make_coda(ortho_mu=1e-3).train()(x).extra["prompt_loss"] > 0


def test_fewer_components_than_tasks_is_a_user_error():
    with pytest.raises(UserError, match="num_components"):
        make_coda(tasks_started=0, num_components=1)


def test_frozen_slice_stays_fixed_across_tasks_end_to_end(tiny):
    """Train 2 tasks through the protocol; slice 0 after task 2 equals slice 0 after task 1."""
    states = []  # clone: on CPU the checkpoint's tensors alias the live parameters

    def snapshot(report):
        states.append({k: v.clone() for k, v in report.checkpoint()["method"]["model"].items()})

    result = run_experiment(tiny(**PARAMS), on_task_end=snapshot)
    assert all(math.isfinite(v) for v in result.metrics.values())
    first, second = states
    for family in ("components", "keys", "attention"):
        assert torch.equal(first[f"{family}.0"], second[f"{family}.0"])
    assert not torch.equal(first["components.1"], second["components.1"])  # GS init, then trained


def test_checkpoint_restores_the_slices_and_the_task_count():
    method = make_coda(tasks_started=2).eval()
    fresh = make_coda(tasks_started=0).eval()
    fresh.load_checkpoint(method.checkpoint_state())
    assert fresh.tasks_seen == 2 and not any(
        k.startswith("backbone.") for k in method.checkpoint_state()["model"]
    )
    torch.testing.assert_close(fresh.predict(images(2)), method.predict(images(2)))


def test_search_space_is_valid_for_every_choice():
    space = importlib.import_module("search_spaces.coda_prompt")
    assert space.METHOD == "coda-prompt" and "--search-space coda_prompt" in space.__doc__
    choices = {key: getattr(domain, "categories", [domain.sample()]) for key, domain in space.SPACE.items()}
    for values in itertools.product(*choices.values()):
        cfg = ExperimentConfig.from_dict({"method.name": space.METHOD, **dict(zip(choices, values))})
        build_options(space.METHOD, cfg.method.params)
