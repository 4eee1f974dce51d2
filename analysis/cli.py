"""Shared command-line pieces of `python -m analysis.tables` and `python -m analysis.plots`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from janus.errors import UserError
from janus.offline import apply_offline_defaults


def study_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", action="append", required=True, metavar="NAME",
                        help="study name under --studies-dir, or a study folder (repeat to pool studies)")
    parser.add_argument("--studies-dir", default="studies", metavar="DIR",
                        help="folder that holds the studies (default: ./studies)")
    return parser


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a CLI body offline; a UserError becomes one line on stderr and exit status 2."""
    apply_offline_defaults()
    try:
        return main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
