"""Progress: one style (``desc n/N``) on stderr; plain lines without control codes off a terminal,
a rich bar on one; build stages numbered n/N and announced when they start."""

from __future__ import annotations

import io

from edgeres.progress import Progress
from edgeres.stages import StageLog, Stages


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_off_a_terminal_have_n_of_n_and_no_control_codes():
    out = io.StringIO()
    with Progress(8, "validate fp32", stream=out) as bar:
        for _ in range(8):
            bar.update()
    lines = out.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines[:3]] == ["validate fp32: 2/8", "validate fp32: 4/8",
                                                          "validate fp32: 6/8"]
    assert lines[3].startswith("validate fp32: 8/8 done in ") and len(lines) == 4
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_a_terminal_gets_a_rich_bar_and_nested_bars_share_it():
    term = Terminal()
    with Progress(4, "sensitivity", stream=term) as outer:
        with Progress(2, "validate layer", stream=term) as inner:
            inner.update(2)
        outer.update(4)
    text = term.getvalue()
    assert "\x1b" in text  # drawn by rich: cursor control on a terminal
    assert "validate layer: 2/2 done in" in text and "sensitivity: 4/4 done in" in text


def test_disabled_progress_writes_nothing():
    out = io.StringIO()
    with Progress(3, "x", stream=out, enabled=False) as bar:
        bar.update(3)
    assert out.getvalue() == ""


def test_build_stages_count_n_of_n_and_announce_long_ones(tmp_path):
    out = io.StringIO()
    log = StageLog(stream=out, planned=3)
    stages = Stages(tmp_path, log)
    stages.run("export onnx", {"a": 1}, lambda: {"ok": True})
    stages.run("export onnx", {"a": 1}, lambda: {"ok": True})
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/3] export onnx ..."
    assert lines[1].startswith("[1/3] export onnx") and "done in" in lines[1]
    assert lines[2].startswith("[2/3] export onnx") and "reused" in lines[2] and len(lines) == 3
