"""Errors a user can cause and fix (unknown names, missing data or weights, bad search spaces)."""


class UserError(Exception):
    """An error the user can fix; the CLI prints it as one line and exits 2."""
