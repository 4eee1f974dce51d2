"""Every search-space module follows the format of search_spaces/__init__.py and names real config keys."""

import importlib

import pytest

import search_spaces
from janus.methods import METHODS


def _module(name):
    return importlib.import_module(f"search_spaces.{name}")


@pytest.mark.parametrize("name", search_spaces.available())
def test_module_follows_the_format(name):
    assert search_spaces.format_problems(_module(name)) == []


@pytest.mark.parametrize("name", search_spaces.available())
def test_every_key_exists_in_the_config_schema(name):
    module = _module(name)
    if module.METHOD not in METHODS:
        pytest.skip(f"method {module.METHOD!r} is not registered yet (janus/methods/ has no such method)")
    assert search_spaces.key_problems(module) == []


@pytest.mark.parametrize("name", search_spaces.available())
def test_docstring_command_runs_this_method(name):
    module = _module(name)
    command = next(line for line in module.__doc__.splitlines() if "python -m study.run" in line)
    assert f"--method {module.METHOD}" in command


@pytest.mark.parametrize("method", ["janus", "seq-lora", "finetune"])
def test_study_methods_have_a_default_space(method):
    assert search_spaces.module_name(method) in search_spaces.available()


def test_janus_space_searches_the_issue_dimensions():
    assert set(_module("janus").SPACE) == {"method.lambda_dml", "method.margin", "method.threshold",
                                           "lora.rank", "optim.lr"}
    assert set(_module("seq_lora").SPACE) <= set(_module("janus").SPACE)


def test_unknown_key_and_unknown_name_are_user_errors(monkeypatch):
    from ray import tune

    from janus.errors import UserError

    module = _module("seq_lora")
    monkeypatch.setitem(module.SPACE, "optim.lrr", tune.uniform(0, 1))
    assert "optim.lrr" in search_spaces.key_problems(module)[0]
    with pytest.raises(UserError, match="optim.lrr"):
        search_spaces.load("seq_lora")
    with pytest.raises(UserError, match="unknown search space"):
        search_spaces.load("no_such_space")
