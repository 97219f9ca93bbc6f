"""The one exception type for mistakes a user can make, and the exit codes of ``edgeres``.

The CLI prints an ``EdgeresError`` as a single line and exits non-zero; anything
else is a bug and keeps its traceback. The exit codes are a contract with scripts and CI
(the README's table lists them): never reuse one for another meaning.
"""

OK = 0
ERROR = 1             # something the user can fix: a missing file, a set that does not fit the model...
USAGE = 2             # a value the command line rules out (argparse uses 2 too)
OVER_BUDGET = 3       # validate --max-drop / build --fail-over-budget: a precision lost more than allowed
DEVICE_RUNS_FAILED = 4  # fleet run: the report was merged, but some device runs failed, hung or died
INTERRUPTED = 130     # Ctrl-C (128 + SIGINT, as shells report it)


class EdgeresError(Exception):
    """Something the user can fix: the message says what was wrong and how to fix it."""

    exit_code = ERROR


class UsageError(EdgeresError):
    """A bad command-line value (depth, class count, input size...): exit code 2."""

    exit_code = USAGE
