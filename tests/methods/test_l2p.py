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


def make_l2p(**params):
    torch.manual_seed(0)
    backbone = build_backbone(BackboneConfig(name="test"), img_size=32)
    context = MethodContext(LoraConfig(), num_tasks=2, classes_per_task=(2, 2), feature_dim=64)
    method = method_class("l2p")(backbone, build_options("l2p", params), context)
    method.before_task(TaskInfo(0, 2, 0, 2, train_data=None, train_eval_data=None, make_loader=None))
    return method


def images(n, seed=1):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_selected_prompts_change_the_output_and_unselected_ones_do_not():
    method = make_l2p(pool_size=10, top_k=3).eval()
    x = images(2)
    out = method(x)
    chosen = set(out.extra["selected"].flatten().tolist())
    unused = next(i for i in range(10) if i not in chosen)
    with torch.no_grad():
        method.prompt_pool[unused] += torch.randn_like(method.prompt_pool[unused])
    assert torch.equal(method(x).features, out.features)
    with torch.no_grad():
        method.prompt_pool[out.extra["selected"][0, 0]] += torch.randn(5, 64)
    assert not torch.allclose(method(x).features[0], out.features[0])
    assert out.features.shape == (2, 64) and not torch.allclose(out.features, method.query(x))


def test_a_sample_gets_the_same_prompts_and_prediction_alone_as_in_a_batch():
    method = make_l2p().eval()
    x = images(6)
    batch = method(x)
    alone = method(x[3:4])
    assert torch.equal(alone.extra["selected"][0], batch.extra["selected"][3])
    torch.testing.assert_close(alone.logits[0], batch.logits[3], atol=1e-5, rtol=1e-5)
    assert method.predict(x[3:4]).argmax() == method.predict(x).argmax(dim=1)[3]


def test_query_is_computed_once_per_step_without_grad():
    method = make_l2p().train()
    queries = []
    frozen_query = method.query
    method.query = lambda x: queries.append(frozen_query(x)) or queries[-1]
    task = TaskInfo(0, 2, 0, 2, train_data=None, train_eval_data=None, make_loader=None)
    method.loss(method(images(3)), torch.tensor([0, 1, 0]), task).backward()
    assert len(queries) == 1 and not queries[0].requires_grad
    torch.testing.assert_close(queries[0], method.backbone(images(3)))  # the unprompted frozen CLS


def test_batchwise_flag_reproduces_the_majority_vote():
    method = make_l2p(batchwise_prompt=True).eval()
    selected = method(images(5)).extra["selected"]
    assert (selected == selected[0]).all()


def test_pull_loss_trains_the_selected_keys_and_ce_the_selected_prompts():
    method = make_l2p(pool_size=10, top_k=2, pull_coeff=0.1).train()
    x, y = images(3), torch.tensor([0, 1, 0])
    task = TaskInfo(0, 2, 0, 2, train_data=None, train_eval_data=None, make_loader=None)
    out = method(x)
    selected = out.extra["selected"]
    query = method.query(x)
    cosines = torch.nn.functional.cosine_similarity(query[:, None], method.prompt_keys[selected], dim=-1)
    torch.testing.assert_close(out.extra["prompt_loss"], 0.1 * (1 - cosines).sum(dim=1).mean())
    method.loss(out, y, task).backward()
    used = torch.zeros(10, dtype=torch.bool)
    used[selected.flatten()] = True
    assert (method.prompt_keys.grad[used].abs().sum(dim=1) > 0).all()
    assert (method.prompt_keys.grad[~used] == 0).all() and (method.prompt_pool.grad[~used] == 0).all()
    assert method.prompt_pool.grad[used].abs().sum() > 0


def test_l2p_plus_plus_prefix_mode_prompts_layer_zero_with_the_cls_feature():
    method = make_l2p(pool_size=6, prompt_length=4, top_k=2, prompt_mode="prefix", feature="cls").eval()
    x = images(2)
    prompting = method.select(method.query(x))
    assert list(prompting.prefixes) == [0] and prompting.tokens is None
    assert prompting.prefixes[0][0].shape == (2, 2 * 2, 64)
    assert not torch.allclose(method(x).features, method.query(x))


def test_bad_option_combinations_are_user_errors():
    with pytest.raises(UserError, match="prompt_mean"):
        build_options("l2p", {"prompt_mode": "prefix", "prompt_length": 4})
    with pytest.raises(UserError, match="top_k"):
        build_options("l2p", {"pool_size": 3, "top_k": 5})
    with pytest.raises(UserError, match="even"):
        build_options("l2p", {"prompt_mode": "prefix", "feature": "cls", "prompt_length": 5})


def test_runs_end_to_end(tiny):
    result = run_experiment(tiny(**{"method.name": "l2p"}))
    assert all(math.isfinite(v) for k, v in result.metrics.items() if k not in ("bwt", "fgt"))
    assert math.isfinite(result.metrics["acc_task"]) and math.isfinite(result.metrics["bwt"])
    usage = result.diagnostics[0]["prompt_usage"]
    assert len(usage) == 10 and sum(usage) > 0


def test_search_space_is_valid_for_every_choice():
    space = importlib.import_module("search_spaces.l2p")
    assert space.METHOD == "l2p" and "--search-space l2p" in space.__doc__
    choices = {key: getattr(domain, "categories", [domain.sample()]) for key, domain in space.SPACE.items()}
    for values in itertools.product(*choices.values()):
        cfg = ExperimentConfig.from_dict({"method.name": space.METHOD, **dict(zip(choices, values))})
        build_options(space.METHOD, cfg.method.params)
