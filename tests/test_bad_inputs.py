"""Bad input across the four command-line tools: each case exits with its code and one `error:` line on
stderr, prints no traceback, and leaves no study folder behind."""

import socket

import pytest
import torch

from analysis import plots, tables
from janus.__main__ import main as janus_main
from study.run import main as study_main

STUDY_BASE = ["--backbone", "test", "--dataset", "synthetic", "--tasks", "2", "--method", "seq-lora", "--seeds", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files(tmp_path):
    """Bad files the cases point at."""
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "truncated.safetensors").write_bytes(b"\x10\x00\x00")
    from safetensors.torch import save_file

    save_file({"patch_embed.proj.weight": torch.zeros(8, 3, 4, 4)}, str(tmp_path / "other.safetensors"))
    cifar = tmp_path / "cifar" / "cifar-100-python"
    cifar.mkdir(parents=True)
    for name in ("train", "test", "meta"):
        (cifar / name).write_bytes(b"not a pickle")
    broken = tmp_path / "studies" / "broken"
    broken.mkdir(parents=True)
    (broken / "study.json").write_text("{not json")
    (broken / "results.parquet").write_text("not parquet")


PORT = _free_port()
STUDY_CASES = [
    (["--method", "nope"], 2, "unknown method 'nope'"),
    (["--dataset", "nope"], 2, "unknown dataset 'nope'"),
    (["--backbone", "nope-net"], 2, "unknown backbone 'nope-net'"),
    (["--seeds", "0"], 2, "--seeds needs a positive count"),
    (["--seeds", "a,b"], 2, "--seeds takes a count"),
    (["--set", "optim.epochs=0"], 2, "optim.epochs must be at least 1"),
    (["--set", "optim.batch_size=0"], 2, "optim.batch_size must be at least 1"),
    (["--set", "lora.rank=0"], 2, "lora.rank must be at least 1"),
    (["--set", "optim.lr=-1"], 2, "optim.lr must be positive"),
    (["--set", "nokey=1"], 2, "unknown config key 'nokey'"),
    (["--set", "method.nope=1"], 2, "unknown config key 'method.nope'"),
    (["--set", "noequals"], 2, "--set expects KEY=VALUE"),
    (["--retry-failed"], 2, "add --resume"),
    (["--seed", "3"], 2, "unrecognized arguments: --seed"),
    (["--num-samples", "0"], 2, "--num-samples must be at least 1"),
    (["--replicate-top", "2"], 2, "add --search optuna"),
    (["--preset", "nope"], 2, "invalid choice: 'nope'"),
    (["--study", "bad/name"], 2, "use letters, digits"),
    (["--tracking-uri", "foo://x"], 2, "unknown scheme 'foo'"),
    (["--tracking-uri", f"http://127.0.0.1:{PORT}"], 2, "does not answer"),
    (["--address", f"127.0.0.1:{PORT}"], 2, "no Ray cluster answers"),
    (["--address", "nonsense"], 2, "expected host:port"),
    (["--search", "optuna", "--search-space", "nope"], 2, "unknown search space 'nope'"),
    (["--resume", "--study", "missing"], 2, "not a study"),
    (["--resume", "--study", "broken"], 2, "study.json"),
    (["--set", "data.synthetic_classes=3"], 2, "3 classes"),
    (["--set", "optim.optimizer=lbfgs"], 2, "optim.optimizer"),
    (["--set", "data.class_order=random"], 2, "class_order"),
    (["--set", "eval.classifier=knn"], 2, "eval.classifier='knn'"),
]
STUDY_FILE_CASES = [
    (["--studies-dir", "{tmp}/a_file/studies"], 2, "writable --studies-dir"),
    (["--backbone", "vit", "--weights", "{tmp}/missing.safetensors"], 2, "does not exist"),
    (["--backbone", "vit", "--weights", "{tmp}/truncated.safetensors"], 2, "weights file"),
    (["--backbone", "vit", "--weights", "{tmp}/other.safetensors"], 2, "width 8, patch 4"),
    (["--dataset", "cifar100", "--tasks", "10", "--data-root", "{tmp}/cifar"], 2, "is not a CIFAR-100 python pickle"),
    (["--dataset", "cifar100", "--tasks", "10", "--data-root", "{tmp}/nowhere"], 2, "CIFAR-100 not found"),
]


def _check(capsys, code, expected_code, expected_text):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "WARNING" not in line]
    assert code == expected_code, err
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("error: ") and expected_text in lines[-1], err


@pytest.mark.parametrize("extra, code, text", STUDY_CASES + STUDY_FILE_CASES,
                         ids=[" ".join(c[0])[:60] for c in STUDY_CASES + STUDY_FILE_CASES])
def test_study_run(tmp_path, capsys, extra, code, text):
    _files(tmp_path)
    studies = tmp_path / "studies"
    before = sorted(p.name for p in studies.iterdir())
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    argv = STUDY_BASE + ["--studies-dir", str(studies), *extra]
    if "--backbone" in extra or "--dataset" in extra:
        argv = ["--method", "seq-lora", "--seeds", "1", "--studies-dir", str(studies), *extra]
        if "--backbone" not in extra:
            argv += ["--backbone", "test"]
        if "--dataset" not in extra:
            argv += ["--dataset", "synthetic", "--tasks", "2"]
    if "--resume" in extra:
        argv = ["--studies-dir", str(studies), *extra]
    _check(capsys, study_main(argv), code, text)
    assert sorted(p.name for p in studies.iterdir()) == before   # nothing half-written


JANUS_CASES = [
    (["--set", "method.name=nope"], 2, "unknown method 'nope'"),
    (["--set", "optim.epochs=0"], 2, "optim.epochs must be at least 1"),
    (["--set", "bad"], 2, "--set expects KEY=VALUE"),
    (["--set", "data.dataset=nope"], 2, "unknown dataset 'nope'"),
    (["--set", "backbone.weights=/nonexistent.safetensors"], 2, "does not exist"),
    (["--set", "eval.classifier=knn", "--set", "backbone.name=test"], 2, "eval.classifier='knn'"),
    (["--sett", "x=1"], 2, "unrecognized arguments"),
    (["--set", "backbone.name=test", "--set", "data.dataset=synthetic", "--set", "data.tasks=2",
      "--set", "optim.lr=1e12", "--set", "optim.head_lr=1e12", "--set", "method.name=finetune"], 1, "non-finite loss"),
]


@pytest.mark.parametrize("argv, code, text", JANUS_CASES, ids=[" ".join(c[0])[:60] for c in JANUS_CASES])
def test_python_m_janus(capsys, argv, code, text):
    _check(capsys, janus_main(argv), code, text)


@pytest.mark.parametrize("tool", [tables, plots], ids=["tables", "plots"])
@pytest.mark.parametrize("extra, text", [
    (["--study", "missing"], "missing"),
    (["--study", "broken"], "broken"),
    ([], "the following arguments are required: --study"),
])
def test_analysis_tools(tmp_path, capsys, tool, extra, text):
    from analysis.cli import run

    _files(tmp_path)
    _check(capsys, run(tool.main, ["--studies-dir", str(tmp_path / "studies"), *extra]), 2, text)


def test_debug_shows_the_traceback(capsys):
    assert janus_main(["--debug", "--set", "method.name=nope"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: unknown method")
