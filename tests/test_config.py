import pytest

from janus.config import ExperimentConfig, flatten, nest
from janus.errors import UserError


def test_flat_and_nested_dicts_build_the_same_config():
    nested = ExperimentConfig.from_dict({"optim": {"lr": 1e-3, "epochs": 2}, "method": {"name": "janus",
                                         "params": {"lambda_dml": 0.2}}})
    flat = ExperimentConfig.from_dict({"optim.lr": 1e-3, "optim.epochs": 2, "method.name": "janus",
                                       "method.lambda_dml": 0.2})
    assert nested == flat
    assert flat.optim.lr == 1e-3 and flat.method.params == {"lambda_dml": 0.2}


def test_unknown_key_names_the_key_and_the_valid_ones():
    with pytest.raises(UserError) as error:
        ExperimentConfig.from_dict({"optim.lrr": 1e-3})
    message = str(error.value)
    assert "'optim.lrr'" in message and "lr" in message and "epochs" in message
    with pytest.raises(UserError, match="unknown config key 'colour'"):
        ExperimentConfig.from_dict({"colour": "red"})


def test_values_are_coerced_and_checked():
    cfg = ExperimentConfig.from_dict({"optim.epochs": "3", "optim.lr": "0.01", "lora.targets": "q,v",
                                      "backbone.pretrained": "false", "data.order_seed": None})
    assert cfg.optim.epochs == 3 and cfg.optim.lr == 0.01
    assert cfg.lora.targets == ("q", "v") and cfg.backbone.pretrained is False
    with pytest.raises(UserError, match="expects int"):
        ExperimentConfig.from_dict({"optim.epochs": 2.5})
    with pytest.raises(UserError, match="expects float"):
        ExperimentConfig.from_dict({"optim.lr": "fast"})


def test_flat_view_round_trips():
    cfg = ExperimentConfig.from_dict({"method.name": "janus", "method.margin": 0.3, "seed": 4})
    flat = cfg.to_flat()
    assert flat["method.margin"] == 0.3 and flat["seed"] == 4 and flat["optim.lr"] == 5e-4
    assert "method.params" not in flat
    assert ExperimentConfig.from_dict(flat) == cfg
    assert nest({"a.b": 1, "a.c": 2}) == {"a": {"b": 1, "c": 2}}
    assert flatten({"a": {"b": 1}}) == {"a.b": 1}


def test_replace_applies_overrides_without_touching_the_original():
    cfg = ExperimentConfig()
    changed = cfg.replace({"optim.lr": 0.1, "method.gamma": 1.0})
    assert changed.optim.lr == 0.1 and changed.method.params == {"gamma": 1.0}
    assert cfg.optim.lr == 5e-4 and cfg.method.params == {}


def test_resolved_config_spells_out_every_method_option():
    from janus.methods import resolve_config

    cfg = resolve_config(ExperimentConfig.from_dict({"method.name": "janus", "method.margin": 0.5}))
    assert cfg.method.params["margin"] == 0.5 and cfg.method.params["oe"] is True
    assert cfg.to_flat()["method.lambda_dml"] == 0.1
    assert resolve_config(ExperimentConfig()).method.params == {}   # seq-lora has no options
