"""The one path from an error or a signal to a message and an exit code.

Every entry point (``edgeres``, ``python -m edgeres.run``) runs its command through
``run_guarded``: an ``EdgeresError`` or an ``OSError`` becomes one line on stderr, and
Ctrl-C, SIGTERM and SIGHUP (what ``timeout``, ``docker stop``, systemd, CI cancellation
and a closed terminal send) are raised as ``Terminated``, a ``KeyboardInterrupt``, so the
same ``finally`` blocks that clean up after Ctrl-C remove temporary files and release
the output-folder lock. Exit codes follow the shell's convention: 128 + the signal.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from edgeres.errors import ERROR, EdgeresError, os_error_message

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP, delivered as an exception where the program happens to be."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Deferral:
    """While ``depth`` > 0 a signal is only noted (``pending``) and raised when the block ends.

    Python runs signal handlers in the main thread whichever thread the kernel picked, so a
    flag the handler reads is the one deferral that works with ONNX Runtime's or OpenMP's
    threads running (a thread's signal mask would not)."""

    depth = 0
    pending: int | None = None


def _on_signal(signum: int, frame: object) -> None:
    for s in HANDLED:  # a second signal must not cut the cleanup of the first short
        signal.signal(s, signal.SIG_IGN)
    if _Deferral.depth:
        _Deferral.pending = signum
        return
    raise Terminated(signum)


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """Within the block, Ctrl-C, SIGTERM and SIGHUP raise ``Terminated`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in HANDLED}
    for s in HANDLED:
        signal.signal(s, _on_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold a signal back for a few statements that must not be cut in half (creating a
    temporary folder and noting it for removal; renaming a result into place): one that
    arrives meanwhile is raised when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Deferral.depth += 1
    try:
        yield
    finally:
        _Deferral.depth -= 1
        if not _Deferral.depth and _Deferral.pending is not None:
            signum, _Deferral.pending = _Deferral.pending, None
            raise Terminated(signum)


def exit_code_of(interrupt: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + int(getattr(interrupt, "signum", signal.SIGINT))


def run_guarded(prog: str, command: Callable[[], int],
                on_error: Callable[[int, str], None] | None = None) -> int:
    """Run ``command``; turn what a user can cause into one line on stderr and an exit code.
    ``on_error(code, message)`` is told too (``--json`` writes it as the error document)."""
    def fail(code: int, message: str) -> int:
        print(f"{prog}: {message}", file=sys.stderr)
        if on_error is not None:
            on_error(code, message)
        return code

    with signals_as_interrupts():
        try:
            return int(command())
        except EdgeresError as exc:
            return fail(exc.exit_code, f"error: {exc}")
        except BrokenPipeError:  # output piped into `head` and the like
            sys.stderr.close()
            return 0
        except OSError as exc:  # the filesystem said no: a path that is a file, no permission, disk full
            return fail(ERROR, f"error: {os_error_message(exc)}")
        except KeyboardInterrupt as exc:
            stopped = isinstance(exc, Terminated) and exc.signum != signal.SIGINT
            why = f"stopped by {exc}" if stopped else "interrupted"
            return fail(exit_code_of(exc), f"{why}; no partial artifact was kept")
