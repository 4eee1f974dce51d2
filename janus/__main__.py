"""`python -m janus`: run the sequential protocol once and print per-task progress and the metrics.

    python -m janus                                   # embedded default: janus, digits (5 tasks), tiny-fmnist
    python -m janus --set method.name=inflora --set optim.epochs=3

The embedded default is the study's (janus/recipes.py): with no flags both run the same recipe. A
`--set method.name=...` picks that method's embedded recipe; other `--set` keys override it.

For studies (several methods, seeds, searches, MLflow) use `python -m study.run`.
"""

from __future__ import annotations

import argparse
import sys
import time

from janus.config import parse_overrides
from janus.errors import DEBUG_HELP, OneLineParser, run_cli
from janus.offline import ONLINE_FLAG, ONLINE_HELP, entry_point_policy


def task_printer(bar, quiet: bool):
    """The per-task line (the bar cleared first); nothing with --quiet."""
    def print_task(report) -> None:
        bar.clear()
        if quiet:
            return
        row = " ".join(f"{a:5.1f}" for a in report.state.acc_matrix[-1][: report.task + 1])
        m = report.metrics
        print(f"task {report.task + 1}/{report.state.num_tasks}  {report.state.task_wall_s[-1]:6.1f}s  "
              f"acc {m['acc']:5.1f}  maa {m['maa']:5.1f}  | per task: {row}", flush=True)

    return print_task


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    entry_point_policy(argv)
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    parser = OneLineParser(prog="python -m janus", description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    parser.add_argument(ONLINE_FLAG, action="store_true", help=ONLINE_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress output (only the final metrics)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. optim.lr=1e-3 (repeatable)")
    args = parser.parse_args(argv)
    from janus.classifier import DESCRIPTIONS
    from janus.config import ExperimentConfig
    from janus.progress import ConsoleBar
    from janus.protocol import run_experiment
    from janus.recipes import single_run

    overrides = parse_overrides(args.set)
    cfg = ExperimentConfig.from_dict({**single_run(overrides.get("method.name", "janus")), **overrides})
    if not args.quiet:
        print(f"{cfg.method.name} on {cfg.data.dataset} ({cfg.data.tasks} tasks), backbone {cfg.backbone.name}, "
              f"classifier: {DESCRIPTIONS.get(cfg.eval.classifier, cfg.eval.classifier)}", flush=True)
    start = time.perf_counter()
    bar = ConsoleBar(enabled=not args.quiet)
    m = run_experiment(cfg, on_task_end=task_printer(bar, args.quiet), on_epoch_end=bar.epoch).metrics
    print(f"done in {time.perf_counter() - start:.1f}s: ACC {m['acc']:.2f}  MAA {m['maa']:.2f}  "
          f"BWT {m['bwt']:.2f}  FGT {m['fgt']:.2f}  (task-averaged ACC {m['acc_task']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
