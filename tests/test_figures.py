"""A row the backend did not execute in its precision says so and is never recommended."""

from __future__ import annotations

from edgeres.pipeline import recommend
from edgeres.report import ResultRow, summary_table
from edgeres.validate.figures import execution_note


def row(precision, executed, p50, agreement=1.0):
    return {"target": "intel-cpu", "backend": "openvino", "precision": precision, "execution_precision": executed,
            "p50_ms": p50, "agreement": agreement, "execution_note": execution_note(precision, executed)}


def test_execution_note_only_when_the_backend_ran_another_precision():
    assert execution_note("fp16", "f32").startswith("built as fp16 but the backend executed f32")
    assert execution_note("bf16", "bf16") is None and execution_note("fp32", "f32") is None
    assert execution_note("int8", "u8 97% / f32 3%") is None and execution_note("int8", "int8 98% of convs") is None
    assert execution_note("int8", "fp32 (simulated int8)") is not None
    assert execution_note("int8", None) is None and execution_note("int8", "unknown") is None


def test_a_precision_not_executed_is_never_recommended():
    rows = [row("fp32", "f32", 40.0), row("fp16", "f32", 30.0)]  # the fp16 IR ran in f32 and happened to be faster
    assert recommend(rows, budget=1.0, labeled=False) == "fp32"
    assert recommend([row("fp16", "f32", 30.0)], budget=1.0, labeled=False) is None


def test_table_says_so_in_words():
    text = summary_table([ResultRow.from_dict(row("fp16", "f32", 30.0))])
    assert "f32 (not as built)" in text and "NOT EXECUTED AS BUILT: built as fp16 but the backend executed f32" in text
