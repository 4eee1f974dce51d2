"""The benchmark scripts still run against the current code (tiny sizes; the numbers themselves are for the
README and the notes, never asserted as timings)."""

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


def numbers(line: str) -> list[float]:
    return [float(word) for word in line.split() if word.replace(".", "", 1).isdigit()]


def test_step_overhead_prints_a_positive_ratio_and_oe_share(capsys):
    importlib.import_module("step_overhead").main(["--backbones", "test", "--steps", "2", "--warmup", "1",
                                                  "--oe-precision", "float32"])
    row = capsys.readouterr().out.strip().splitlines()[-1]
    lora_ms, janus_ms, ratio, oe_s, _oe_share = numbers(row)
    assert row.startswith("test") and ratio == pytest.approx(janus_ms / lora_ms, rel=0.05) and oe_s > 0


def test_gr_ops_counts_ops_inside_the_hooks(capsys):
    assert importlib.import_module("gr_ops").main(["--backbones", "test"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[-3:]
    (base, zero), (meter_on, hooks_on, _), (meter_off, hooks_off, _) = (numbers(r) for r in rows)
    assert zero == 0 and base > 0 and meter_on > meter_off > base and hooks_on > hooks_off > 0


def test_packing_runs_concurrent_trials(capsys):
    assert importlib.import_module("packing").main(["--trials", "1,2", "--steps", "2", "--warmup", "1",
                                                    "--batch", "4"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[-2:]
    (one, n1, ratio1, _), (two, n2, ratio2, _) = (numbers(r) for r in rows)
    assert (one, two, ratio1) == (1, 2, 1.0) and n2 > 0 and ratio2 == pytest.approx(n2 / n1, rel=0.03)  # 1-decimal rows


def test_full_run_prints_totals_their_ratio_and_the_projection(capsys, tmp_path):
    argv = ["--backbone", "test", "--image-size", "32", "--per-class", "5", "--batch", "16", "--epochs", "1",
            "--project-epochs", "3", "--cache", "on", "--augment-on", "device", "--data", str(tmp_path)]
    assert importlib.import_module("full_run").main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "800 train images" in lines[-6] and "cache on, augment on device" in lines[-5]
    (janus_total, _, janus_rate, janus_projected), (lora_total, _, _, lora_projected) = \
        (numbers(line) for line in lines[-3:-1])
    assert janus_rate > 0 and janus_projected > janus_total and lora_projected > lora_total
    assert numbers(lines[-1])[-1] == pytest.approx(janus_total / lora_total, rel=0.05)  # totals print 1 decimal


def test_the_tree_writer_writes_the_same_files_with_workers(tmp_path):
    from janus.testing import write_imagenet_r_tree

    assert write_imagenet_r_tree(tmp_path / "one", 3, 2) == write_imagenet_r_tree(tmp_path / "two", 3, 2, workers=2) == 6
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.jpg"))
    assert len(files) == 6 and all((tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes()
                                   for f in files)


def test_the_gpu_suite_runs_every_stage_at_smoke_size(tmp_path):
    import os
    import subprocess

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_suite.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path)], env={**os.environ, "SMALL": "1",
                          "PYTHON": sys.executable}, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.strip().endswith(f"stages failed: 0 (logs in {tmp_path})")
    for stage in ("step_overhead_f32", "step_overhead_f64", "packing", "full_run"):
        assert (tmp_path / f"{stage}.log").read_text().rstrip().splitlines()[-1].startswith(f"== {stage}: exit 0")
    assert "ratio janus/seq-lora total:" in (tmp_path / "full_run.log").read_text()
    assert not (tmp_path / "imagenet-r-shaped").exists()
