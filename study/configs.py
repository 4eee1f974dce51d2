"""Trial configs: the flat override dicts that Tune trials carry, and their resolution.

A Tune trial's config holds only overrides of `ExperimentConfig` defaults, as flat dotted keys
(`{"method.name": "janus", "optim.lr": 1e-3, ...}`): a grid or replicate trial carries them under `cell`
(one `tune.grid_search` entry per method x dataset x backbone x seed), a search trial at the top level (the
study's constants plus the values Optuna suggested). `resolve` turns them into the typed config every
record uses: the method's options complete with their defaults.
"""

from __future__ import annotations

from janus.config import ExperimentConfig
from janus.methods import resolve_config

CELL = "cell"


def trial_overrides(tune_config: dict) -> dict:
    """The flat overrides in a Tune trial config (top-level keys, then the grid's `cell` on top)."""
    flat = {k: v for k, v in tune_config.items() if k != CELL}
    flat.update(tune_config.get(CELL, {}))
    return flat


def resolve(overrides: dict) -> ExperimentConfig:
    """Validated config with the method's options filled in (unknown keys -> UserError naming them)."""
    return resolve_config(ExperimentConfig.from_dict(overrides))


def trial_label(overrides: dict) -> str:
    """A short readable name: method-dataset-backbone-tT-sSEED; an ablation row of Janus-LoRA adds the parts
    it switches off (janus-no-gr-...)."""
    get = overrides.get
    off = "".join(f"-no-{part}" for part in ("oe", "gr", "dml")
                  if False in (get(f"method.{part}"), get(f"method.{part}.enabled")))
    return (f"{get('method.name', 'seq-lora')}{off}-{get('data.dataset', 'digits')}-{get('backbone.name', 'test')}"
            f"-t{get('data.tasks', 5)}-s{get('seed', 0)}").replace("/", "_")


def trial_name(trial) -> str:
    """Tune `trial_name_creator`: the readable label plus the trial id (unique within a study)."""
    return f"{trial_label(trial_overrides(trial.config))}_{trial.trial_id}"
