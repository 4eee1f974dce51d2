"""`python -m study.run`: one command runs a whole study (see `--help` and the README's study section).

    python -m study.run                         # embedded default: test backbone, digits, 5 tasks,
                                                # janus vs seq-lora vs finetune, 2 seeds, on CPU
    python -m study.run --backbone dino         # the same study on DINO ViT-B/16
    python -m study.run --study NAME --resume   # finish an interrupted study
"""

from __future__ import annotations

import sys

import janus  # noqa: F401  (first: turns off Ray usage stats, MLflow telemetry and hub look-ups)
from janus.errors import UserError


def main(argv: list[str] | None = None) -> int:
    from study.cli import argv_or_sys, parse_settings
    from study.driver import run_study

    try:
        return run_study(parse_settings(argv_or_sys(argv)))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
