"""`python -m study.run`: one command runs a whole study (see `--help` and the README's study section).

    python -m study.run                         # embedded default: tiny-fmnist backbone, digits, 5 tasks,
                                                # janus (ablation rows), seq-lora, lora-gpm, inflora,
                                                # finetune; 3 seeds, on CPU
    python -m study.run --backbone dino         # the same study on DINO ViT-B/16
    python -m study.run --study NAME --resume   # finish an interrupted study
"""

from __future__ import annotations

import sys

from janus.errors import run_cli
from janus.offline import entry_point_policy


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    entry_point_policy(argv)  # first: Ray usage stats, MLflow telemetry and (unless --online) hub look-ups off
    from study.cli import parse_settings
    from study.driver import run_study

    return run_cli(lambda args: run_study(parse_settings(args)), argv)


if __name__ == "__main__":
    sys.exit(main())
