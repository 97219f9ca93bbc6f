"""Plain-text tables for people; the CLI prints JSON instead with ``--json``."""

from __future__ import annotations

from collections.abc import Sequence


def counted(n: object, noun: str) -> str:
    """'1 thread', '2 threads': a count with its noun, plural unless the count is 1."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """Columns padded to their widest cell; ``align`` has one 'l' or 'r' per column."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])
