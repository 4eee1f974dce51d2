"""Flags -> settings, and the one-line errors (exit 2) a user's mistake gets before anything starts."""

import subprocess
import sys
from pathlib import Path

import pytest

from janus.errors import UserError
from study.cli import DEFAULT_METHODS, parse_seeds, parse_settings
from study.run import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--backbone", "test", "--dataset", "synthetic", "--tasks", "2", "--method", "seq-lora", "--seeds", "1",
        "--set", "data.synthetic_classes=4"]


def test_defaults_are_the_embedded_study(tmp_path):
    from janus.methods import METHODS

    settings = parse_settings(["--studies-dir", str(tmp_path)])
    assert settings.backbones == ("tiny-fmnist",) and settings.datasets == ("digits",)
    assert settings.methods == tuple(m for m in DEFAULT_METHODS if m in METHODS)
    assert set(settings.methods) == {"janus", "seq-lora", "lora-gpm", "inflora", "finetune"}
    assert settings.seeds == (0, 1, 2) and settings.search == "none" and settings.tasks is None
    assert settings.ablation  # the default list runs Janus as its ablation rows
    assert not parse_settings(["--studies-dir", str(tmp_path), "--method", "janus"]).ablation
    assert parse_settings(["--studies-dir", str(tmp_path), "--method", "janus", "--ablation", "on"]).ablation
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.studies_dir == tmp_path


def test_seeds_count_or_list():
    assert parse_seeds("3") == (0, 1, 2)
    assert parse_seeds("0,3,7") == (0, 3, 7)
    with pytest.raises(UserError):
        parse_seeds("x")


def test_lists_and_overrides_are_parsed(tmp_path):
    settings = parse_settings(["--studies-dir", str(tmp_path), "--method", "seq-lora,finetune",
                               "--backbone", "test,vit", "--set", "optim.lr=1e-3", "--gpus-per-trial", "0.25"])
    assert settings.methods == ("seq-lora", "finetune") and settings.backbones == ("test", "vit")
    assert settings.overrides == {"optim.lr": "1e-3"} and settings.gpus_per_trial == 0.25
    assert settings.tune_storage == str(tmp_path / settings.name / "ray")
    remote = parse_settings(["--studies-dir", str(tmp_path), "--study", "x", "--storage-path", "s3://bucket/runs/"])
    assert remote.tune_storage == "s3://bucket/runs/x"


@pytest.mark.parametrize("argv, message", [
    (["--method", "nope"], "unknown method 'nope'"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--backbone", "nope-net"], "unknown backbone 'nope-net'"),
    (["--set", "optim.lrr=1"], "unknown config key 'optim.lrr'"),
    (["--set", "method.lambda_dml=0.2"], "no method of this study"),
    (["--set", "seed=3"], "--seeds"),
    (["--search", "grid"], "invalid choice"),
    (["--search", "optuna", "--search-space", "nope"], "unknown search space 'nope'"),
    (["--search", "optuna", "--search-space", "finetune"], "is for method 'finetune'"),
    (["--tasks", "3", "--dataset", "synthetic"], "tasks"),
    (["--replicate-top", "2"], "add --search optuna"),
    (["--preset", "paper"], "no protocol for data set 'digits'"),
])
def test_bad_flags_give_one_line_and_exit_2(argv, message, tmp_path, capsys):
    base = ["--studies-dir", str(tmp_path), "--method", "seq-lora"]
    assert main(base + argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err
    assert not any(tmp_path.iterdir()), "nothing may be created before the checks pass"


def test_bad_search_space_key_is_one_line(tmp_path, capsys, monkeypatch):
    from ray import tune

    import search_spaces.seq_lora as space

    monkeypatch.setitem(space.SPACE, "optim.lrr", tune.uniform(0, 1))
    assert main(["--studies-dir", str(tmp_path), "--search", "optuna", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown key 'optim.lrr'" in err and "\n" not in err


def test_resume_refuses_new_choices_and_needs_a_study(tmp_path, capsys):
    assert main(["--studies-dir", str(tmp_path), "--resume", "--method", "finetune"]) == 2
    assert "drop --method" in capsys.readouterr().err
    assert main(["--studies-dir", str(tmp_path), "--resume"]) == 2
    assert "no study to resume" in capsys.readouterr().err


def test_missing_weights_fail_in_the_driver_without_a_traceback(tmp_path):
    """`--backbone dino` offline, without the weights: the backbone factory's message, exit 2, one line."""
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "study.run", "--backbone", "dino", "--studies-dir", str(tmp_path)],
                          check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no pretrained weights for 'vit_base_patch16_224.dino'" in lines[0]
    assert "Traceback" not in done.stderr and not list(tmp_path.glob("*/study.json"))
