"""The one exception type for mistakes a user can make.

The CLI prints an ``EdgeresError`` as a single line and exits non-zero; anything
else is a bug and keeps its traceback.
"""


class EdgeresError(Exception):
    """Something the user can fix: the message says what was wrong and how to fix it."""

    exit_code = 1


class UsageError(EdgeresError):
    """A bad command-line value (depth, class count, input size...): exit code 2."""

    exit_code = 2
