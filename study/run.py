"""`python -m study.run`: one command runs a whole study (see `--help` and the README's study section).

    python -m study.run                         # embedded default: tiny-fmnist backbone, digits, 5 tasks,
                                                # janus (ablation rows), seq-lora, lora-gpm, inflora,
                                                # finetune; 3 seeds, on CPU
    python -m study.run --backbone dino         # the same study on DINO ViT-B/16
    python -m study.run --study NAME --resume   # finish an interrupted study
"""

from __future__ import annotations

import sys

import janus  # noqa: F401  (first: turns off Ray usage stats, MLflow telemetry and hub look-ups)
from janus.errors import run_cli


def main(argv: list[str] | None = None) -> int:
    from study.cli import argv_or_sys, parse_settings
    from study.driver import run_study

    return run_cli(lambda args: run_study(parse_settings(args)), argv_or_sys(argv))


if __name__ == "__main__":
    sys.exit(main())
