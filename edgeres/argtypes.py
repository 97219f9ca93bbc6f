"""Command-line parsing that refuses like the rest of edgeres: one line, exit code 2.

``Parser`` is argparse's parser with a one-line error (and a hint to ``--help``)
instead of the usage block; subparsers inherit it. The type factories check a
flag's value against ``edgeres.limits`` while parsing, so a value the command line
rules out (``--input-size 100000``, ``--batch 0``, ``--accuracy-budget nan``) is
refused before anything is read or written, with the same exit code everywhere.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Callable
from typing import NoReturn

from edgeres import limits
from edgeres.errors import EdgeresError, UsageError


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose rejections are one error line plus a hint, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(UsageError.exit_code, f"{self.prog}: error: {message}{_nearest_choice(message)}\n"
                                        f"(see '{self.prog} --help')\n")


def refuse_unrecognized(parser: argparse.ArgumentParser, extra: list[str],
                        words: list[str | None]) -> NoReturn:
    """Unknown arguments, refused by the (sub)command they were given to, so the line reads
    ``edgeres bench: error: ...`` as every other error does, with the nearest flag it has."""
    for word in filter(None, words):  # the command, then a kit or fleet subcommand
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            break
        parser = subs[0].choices[word]
    options = [o for a in parser._actions for o in a.option_strings]
    close = difflib.get_close_matches(extra[0].split("=")[0], options, n=1) if extra[0].startswith("-") else []
    parser.error(f"unrecognized arguments: {' '.join(extra)}" + (f"; did you mean '{close[0]}'?" if close else ""))


RUN_HINT = "a bundle runs with: python -m edgeres.run BUNDLE IMAGE... (see README: Bundles)"


def _nearest_choice(message: str) -> str:
    """For a mistyped command: the nearest one ('buidl' -> 'build'), or how to run a bundle ('run')."""
    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if not found:
        return ""
    word, choices = found.group(1), [c.strip(" '") for c in found.group(2).split(",")]
    if word == "run" and message.startswith("argument COMMAND:"):  # the top-level command, not kit's
        return f"; {RUN_HINT}"
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _convert(text: str, kind: type) -> float:
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def _checked(value: float, bound: limits.Bound) -> float:
    try:
        return limits.check("the value", value, bound)
    except EdgeresError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("the value ")) from None


def integer(bound: limits.Bound | None = None) -> Callable[[str], int]:
    """An argparse type: an integer, inside ``bound`` when one is given (else checked where it is used)."""

    def parse(text: str) -> int:
        value = _convert(text, int)
        return int(_checked(value, bound) if bound else value)

    parse.__name__ = "integer"  # argparse names the type in its message
    return parse


def number(bound: limits.Bound) -> Callable[[str], float]:
    """An argparse type: a finite number inside ``bound`` (never nan or inf)."""

    def parse(text: str) -> float:
        return float(_checked(_convert(text, float), bound))

    parse.__name__ = "number"
    return parse


def checked_by(parse_value: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type that keeps the text but refuses it when ``parse_value`` raises
    an ``EdgeresError`` (a batch list, a batch profile): refused while parsing, exit 2."""

    def parse(text: str) -> str:
        try:
            parse_value(text)
        except EdgeresError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    parse.__name__ = getattr(parse_value, "__name__", "value")
    return parse
