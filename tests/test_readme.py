"""The README's own examples run: every code block marked ``<!-- readme-test: run -->`` (the
convention is written at the top of README.md) is run command by command in a fresh folder, with
this checkout's ``edgeres`` and ``python``. Each command must exit 0, every table header the README
shows under it must be in its output, and a ``--json`` command must print exactly one JSON document.
A README edit that breaks a marked example fails here; unmarked examples (that need your own files
or a long build) are not run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARK = "<!-- readme-test: run -->"
RULE = re.compile(r"^-{2,}(\s+-{2,})*\s*$")  # a plain-text table's rule line


@dataclass
class Command:
    line: str
    shown: list[str] = field(default_factory=list)  # the output lines the README shows under it

    def headers(self) -> list[str]:
        """Table headers shown: each line directly above a rule line."""
        return [self.shown[i - 1] for i in range(1, len(self.shown)) if RULE.match(self.shown[i].strip())]


@dataclass
class Example:
    section: str
    lineno: int
    commands: list[Command]


def _code_block(lines: list[str], start: int) -> list[str]:
    """The code block starting at or after ``start`` (blank lines skipped): indented or fenced."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i < len(lines) and lines[i].lstrip().startswith("```"):
        end = next(j for j in range(i + 1, len(lines)) if lines[j].lstrip().startswith("```"))
        return lines[i + 1:end]
    block = []
    while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
        block.append(lines[i][4:])
        i += 1
    while block and not block[-1].strip():
        block.pop()
    return block


def _commands(block: list[str]) -> list[Command]:
    commands: list[Command] = []
    pending = ""
    for line in block:
        if pending or line.startswith("$ "):
            text = pending + (line[2:] if not pending else line.strip())
            pending = text[:-1].rstrip() + " " if text.endswith("\\") else ""
            if not pending:
                commands.append(Command(text.strip()))
        elif commands:
            commands[-1].shown.append(line)
    return commands


def readme_examples(text: str) -> list[Example]:
    lines = text.splitlines()
    examples, section = [], "top"
    for i, line in enumerate(lines):
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        elif line.strip() == MARK:
            examples.append(Example(section, i + 1, _commands(_code_block(lines, i + 1))))
    return examples


EXAMPLES = readme_examples(README.read_text())


def test_readme_marks_runnable_examples():
    """The convention is in use: the quick commands are marked, and every marked block has commands."""
    assert len(EXAMPLES) >= 4
    assert all(ex.commands for ex in EXAMPLES), [ex.lineno for ex in EXAMPLES if not ex.commands]


def test_parser_reads_commands_output_and_headers():
    text = "## S\n\n" + MARK + "\n\n    $ edgeres a \\\n        --b\n    h1  h2\n    --  ---\n    1   2\n    $ c\n\nprose\n"
    (ex,) = readme_examples(text)
    assert ex.section == "S" and [c.line for c in ex.commands] == ["edgeres a --b", "c"]
    assert ex.commands[0].headers() == ["h1  h2"] and ex.commands[1].shown == []


def _tools(bin_dir: Path) -> dict[str, str]:
    """``edgeres`` and ``python`` on PATH, both this checkout's, for the README's shell lines."""
    bin_dir.mkdir()
    for name, args in (("edgeres", "-m edgeres.cli"), ("python", ""), ("python3", "")):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args} "$@"\n')
        tool.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("EDGERES_OUT", None)
    return env


def _words(line: str) -> list[str]:
    return line.split()


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[f"L{ex.lineno}-{ex.section[:40]}" for ex in EXAMPLES])
def test_readme_example_runs(example, tmp_path):
    env = _tools(tmp_path / "bin")
    work = tmp_path / "work"
    work.mkdir()
    for cmd in example.commands:
        proc = subprocess.run(["bash", "-c", cmd.line], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600, check=False)
        where = f"README.md line {example.lineno} ({example.section}): $ {cmd.line}"
        assert proc.returncode == 0, f"{where}\nexit {proc.returncode}\n{proc.stderr[-3000:]}"
        out_lines = [_words(line) for line in proc.stdout.splitlines()]
        for header in cmd.headers():
            assert _words(header) in out_lines, f"{where}\nthe README shows the header\n  {header}\nnot in:\n" \
                                                f"{proc.stdout[:3000]}"
        if "--json" in cmd.line.split():
            json.loads(proc.stdout)  # exactly one document: anything else on stdout fails to parse
