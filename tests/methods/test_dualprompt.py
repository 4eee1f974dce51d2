import importlib
import itertools
import math

import pytest
import torch

from janus.backbone import build_backbone
from janus.config import BackboneConfig, ExperimentConfig, LoraConfig
from janus.errors import UserError
from janus.methods import MethodContext, TaskInfo, build_options, method_class
from janus.protocol import run_experiment


def task(index):
    return TaskInfo(index, 2, 2 * index, 2, train_data=None, train_eval_data=None, make_loader=None)


def make_dualprompt(tasks_started=1, **params):
    torch.manual_seed(0)
    backbone = build_backbone(BackboneConfig(name="test"), img_size=32)
    context = MethodContext(LoraConfig(), num_tasks=2, classes_per_task=(2, 2), feature_dim=64)
    method = method_class("dualprompt")(backbone, build_options("dualprompt", params), context)
    for index in range(tasks_started):
        method.before_task(task(index))
    return method


def images(n, seed=1):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_training_uses_the_tasks_own_e_prompt_and_gradient_reaches_only_it():
    method = make_dualprompt(tasks_started=2).train()
    x, y = images(3), torch.tensor([2, 3, 2])
    out = method(x)
    assert (out.extra["selected"] == 1).all()
    method.loss(out, y, task(1)).backward()
    assert method.e_prompts[1].grad.abs().sum() > 0 and method.e_keys[1].grad.abs().sum() > 0
    assert method.e_prompts[0].grad is None and method.e_keys[0].grad is None
    assert method.g_prompt.grad.abs().sum() > 0
    trainable = {id(p) for p in method.trainable_parameters()}
    assert trainable == {id(method.g_prompt), id(method.e_prompts[1]), id(method.e_keys[1])}


def test_pull_loss_is_one_minus_the_cosine_to_the_current_key():
    method = make_dualprompt(pull_coeff=0.5).train()
    x = images(2)
    cosines = torch.nn.functional.cosine_similarity(method.query(x), method.e_keys[0][None], dim=-1)
    torch.testing.assert_close(method(x).extra["prompt_loss"], 0.5 * (1 - cosines).mean())


def test_test_time_key_matching_picks_the_nearest_seen_key_per_sample():
    method = make_dualprompt(tasks_started=2).eval()
    x = images(4)
    query = method.query(x)
    with torch.no_grad():
        method.e_keys[0].copy_(query[1])
        method.e_keys[1].copy_(query[2])
    selected = method(x).extra["selected"][:, 0]
    assert selected[1] == 0 and selected[2] == 1
    alone = method(x[2:3])
    torch.testing.assert_close(alone.logits[0], method(x).logits[2], atol=1e-5, rtol=1e-5)


def test_only_seen_tasks_are_candidates_at_test_time():
    method = make_dualprompt(tasks_started=1).eval()
    with torch.no_grad():
        method.e_keys[1].copy_(method.query(images(3))[0])  # a future task's key that would match best
    assert (method(images(3)).extra["selected"] == 0).all()


def test_prefix_layout_follows_the_coda_defaults():
    method = make_dualprompt().eval()
    prefixes = method.select(method.query(images(2))).prefixes
    assert sorted(prefixes) == [0, 1, 2, 3, 4]
    assert prefixes[0][0].shape == (2, 3, 64) and prefixes[2][1].shape == (2, 10, 64)


def test_e_init_from_previous_copies_the_last_e_prompt():
    method = make_dualprompt(e_init_from_previous=True)
    method.before_task(task(1))
    assert torch.equal(method.e_prompts[1], method.e_prompts[0])


def test_odd_prompt_lengths_are_user_errors():
    with pytest.raises(UserError, match="e_length"):
        build_options("dualprompt", {"e_length": 5})


def test_runs_end_to_end(tiny):
    result = run_experiment(tiny(**{"method.name": "dualprompt"}))
    assert all(math.isfinite(v) for v in result.metrics.values())


def test_search_space_is_valid_for_every_choice():
    space = importlib.import_module("search_spaces.dualprompt")
    assert space.METHOD == "dualprompt" and "--search-space dualprompt" in space.__doc__
    choices = {key: getattr(domain, "categories", [domain.sample()]) for key, domain in space.SPACE.items()}
    for values in itertools.product(*choices.values()):
        cfg = ExperimentConfig.from_dict({"method.name": space.METHOD, **dict(zip(choices, values))})
        build_options(space.METHOD, cfg.method.params)
