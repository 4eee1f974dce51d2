"""Shared command-line pieces of `python -m analysis.tables` and `python -m analysis.plots`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from janus.errors import DEBUG_HELP, OneLineParser, run_cli
from janus.offline import ONLINE_FLAG, ONLINE_HELP, entry_point_policy


def study_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description=doc, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    parser.add_argument(ONLINE_FLAG, action="store_true", help=ONLINE_HELP)
    parser.add_argument("--study", action="append", required=True, metavar="NAME",
                        help="study name under --studies-dir, or a study folder (repeat to pool studies)")
    parser.add_argument("--studies-dir", default="studies", metavar="DIR",
                        help="folder that holds the studies (default: ./studies)")
    return parser


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a CLI body offline through the one error path (`janus.errors.run_cli`: a UserError is one line
    on stderr and exit status 2; --debug shows tracebacks)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    entry_point_policy(argv)
    return run_cli(main, argv)
