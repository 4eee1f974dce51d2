"""Errors a user can cause and fix (unknown names, missing data or weights, bad search spaces), and the one
error path of every command-line entry point."""

import argparse


class UserError(Exception):
    """An error the user can fix; the CLI prints it as one line and exits 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are `UserError`s: one line (naming --help) and exit 2 through `run_cli`."""

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


DEBUG_ENV = "JANUS_DEBUG"
DEBUG_HELP = "show the full traceback of an error (for bug reports; also env JANUS_DEBUG=1)"


def wants_debug(argv) -> bool:
    import os

    return "--debug" in (argv or []) or os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


def run_cli(body, argv: list[str]) -> int:
    """The one error path of every command-line entry point: a `UserError` is `error: ...` on stderr and
    exit 2; Ctrl-C exits 130; any other exception is one line naming its type and exit 1. With `--debug`
    (or JANUS_DEBUG=1) the traceback is printed as well."""
    import sys
    import traceback

    debug = wants_debug(argv)
    try:
        return body(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserError as error:
        caught, code, line = error, 2, f"error: {error}"
    except Exception as error:  # noqa: BLE001  (the last resort of a CLI: one line instead of a traceback)
        text = str(error).strip().splitlines()
        caught, code, line = error, 1, f"error: {type(error).__name__}: {text[0] if text else ''}"
        if not debug:
            line += " (rerun with --debug for the traceback)"
    if debug:
        traceback.print_exception(caught)
    print(line, file=sys.stderr)
    return code


def check_choice(option: str, value: str, valid) -> None:
    """A clear message for a bad string option (the config checks only its type)."""
    if value not in valid:
        raise UserError(f"unknown method.{option} {value!r}; valid: {', '.join(valid)}")
