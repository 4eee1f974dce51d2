"""Janus-LoRA for class-incremental learning on pre-trained ViTs (timm).

`janus.run_experiment(config)` runs the full sequential protocol and returns the accuracy matrix and metrics.
Importing the package changes nothing in the process environment; the command-line entry points
(`python -m janus`, `python -m janus.pretrain`, `python -m study.run`, `python -m analysis.*`) turn off Ray usage
stats, MLflow telemetry and hub look-ups unless the user set them or passed `--online` (`janus.offline`).
"""

__all__ = ["ExperimentConfig", "ExperimentResult", "run_experiment"]


def __getattr__(name):  # lazy: `import janus.config` must not import torch's whole stack
    if name in ("run_experiment", "ExperimentResult"):
        from janus import protocol

        return getattr(protocol, name)
    if name == "ExperimentConfig":
        from janus.config import ExperimentConfig

        return ExperimentConfig
    raise AttributeError(f"module 'janus' has no attribute {name!r}")
