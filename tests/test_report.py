"""The report: report.json / report.md / accuracy_latency.png, the summary table, merging builds
and a kit report from a device, and the `edgeres report` command."""

from __future__ import annotations

import builtins
import json

import pytest

from edgeres.cli import main
from edgeres.errors import EdgeresError
from edgeres.fileio import read_json, write_json_atomic
from edgeres.hostinfo import environment
from edgeres.report import (
    PLOT_PNG,
    REPORT_JSON,
    REPORT_MD,
    ResultRow,
    merge_reports,
    pareto_front,
    plot_metric,
    read_report,
    summary_table,
    write_report,
)

TIMING = {"where": "host", "what": "wall clock, inputs already on host", "batch": 1, "threads": 2, "warmup": 10,
          "iterations": 50}
ROWS = [
    {"target": "intel-cpu", "backend": "openvino", "precision": "fp32", "execution_precision": "f32", "top1": 0.953,
     "top1_drop": 0.0, "agreement": 1.0, "cosine": 1.0, "p50_ms": 9.8, "p99_ms": 11.2, "throughput": 102.0,
     "size_bytes": 46_000_000, "build_seconds": 3.2},
    {"target": "intel-cpu", "backend": "openvino", "precision": "int8", "execution_precision": "u8 97% / f32 3%",
     "top1": 0.949, "top1_drop": 0.004, "agreement": 0.99, "cosine": 0.998, "p50_ms": 5.4, "p99_ms": 6.3,
     "throughput": 185.0, "size_bytes": 12_000_000, "build_seconds": 8.4, "notes": ["NNCF, 300 samples"]},
    {"target": "cpu", "backend": "onnxruntime", "precision": "fp32", "top1": 0.953, "top1_drop": 0.0,
     "agreement": 1.0, "p50_ms": 19.6, "p99_ms": 22.0, "throughput": 51.0, "size_bytes": 46_000_000,
     "build_seconds": 1.0},
]
MODEL = {"depth": 50, "num_classes": 10, "input_size": 224, "weights": "demo"}


def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return width, height


def test_write_report_three_files(tmp_path):
    report = write_report(ROWS, tmp_path, timing=TIMING, model=MODEL, title="demo build")
    data = read_json(tmp_path / REPORT_JSON)
    assert data["schema"] == "edgeres.report" and data["schema_version"] == 1 and data["edgeres_version"]
    env = data["environment"]
    assert env["cpu"] and env["python"] and env["os"] and "onnxruntime" in env["backends"]
    assert [r["precision"] for r in data["rows"]] == ["fp32", "int8", "fp32"] and data["timing"] == TIMING
    md = (tmp_path / REPORT_MD).read_text()
    assert md.startswith("# demo build") and "ResNet-50, 10 classes" in md
    assert "| intel-cpu | openvino | int8 | u8 97% / f32 3% | 94.9% | 0.4 pt | - | 99.0% | 5.40 | 6.30 | - | 185 |" in md
    assert "- instruction sets: " in md and "INT8 " in md  # what the CPU offers each precision
    assert "## What was timed" in md and "- warm-up runs: 10" in md and "- threads: 2" in md
    assert f"![accuracy vs latency]({PLOT_PNG})" in md and "intel-cpu int8: NNCF, 300 samples" in md
    w, h = _png(tmp_path / PLOT_PNG)
    assert w >= 1000 and h >= 600
    assert report.rows[1].top1_drop == 0.004
    assert read_report(tmp_path).rows == report.rows


def test_summary_table_columns_and_fidelity_footnote():
    rows = [dict(ROWS[0], fidelity_only=True), ROWS[1]]
    text = summary_table(rows)
    header = text.splitlines()[0].split()
    assert header[:6] == ["target", "backend", "precision", "exec", "top-1", "top-1"]
    assert "p50" in header and "p99" in header and "img/s" in header and "size" in header and "build" in header
    assert "95.3%*" in text and "fidelity-only" in text and "43.9 MB" in text and "8.4 s" in text
    assert "fidelity-only" not in summary_table(ROWS[1:])


def test_rows_from_validate_results_and_synonyms():
    """Rows as the pipeline and kits give them: nested accuracy and latency dicts."""
    row = ResultRow.from_dict({
        "target": "jetson-orin", "backend": "tensorrt", "precision": "int8", "exec_precision": "int8",
        "accuracy": {"n": 256, "top1": 0.9, "top5": 0.99, "agreement": 0.98, "cosine": 0.997, "top1_drop": 0.01,
                     "reference_top1": 0.91},
        "latency": [{"batch_size": 8, "p50_ms": 4.0, "p99_ms": 5.0, "throughput": 2000.0},
                    {"batch_size": 1, "p50_ms": 1.0, "p99_ms": 1.5, "throughput": 1000.0, "threads": None}],
        "engine_bytes": 5_000_000, "build_time": 60.0, "notes": "weakly typed", "extra": {"plan": {}},
    })
    assert (row.top1, row.agreement, row.p50_ms, row.batch, row.throughput) == (0.9, 0.98, 1.0, 1, 1000.0)
    assert row.size_bytes == 5_000_000 and row.build_seconds == 60.0 and row.notes == ["weakly typed"]
    assert row.execution_precision == "int8" and row.extra["reference_top1"] == 0.91 and "plan" in row.extra
    with pytest.raises(EdgeresError, match="no 'precision'"):
        ResultRow.from_dict({"target": "x", "backend": "y"})


def test_pareto_front_and_metric_choice():
    # (latency, accuracy): the front is the fastest, then each strictly more accurate one
    pts = [(10.0, 95.0), (5.0, 94.0), (6.0, 93.0), (20.0, 95.0), (12.0, 96.0)]
    assert pareto_front(pts) == [1, 0, 4]
    rows = [ResultRow.from_dict(r) for r in ROWS]
    assert plot_metric(rows)[0] == "top1"
    rows[0].fidelity_only = True
    assert plot_metric(rows)[0] == "agreement"


def test_fidelity_only_report_plots_agreement(tmp_path):
    rows = [dict(r, fidelity_only=True, top1=0.1) for r in ROWS]
    write_report(rows, tmp_path, timing=TIMING, model=MODEL)
    _png(tmp_path / PLOT_PNG)
    assert "fidelity-only" in (tmp_path / REPORT_MD).read_text()


def test_no_matplotlib_skips_plot_with_note(tmp_path, monkeypatch):
    (tmp_path / PLOT_PNG).write_bytes(b"stale")
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    report = write_report(ROWS, tmp_path, timing=TIMING)
    assert not (tmp_path / PLOT_PNG).exists()
    assert any("matplotlib is not installed" in n for n in report.notes)
    assert "matplotlib is not installed" in (tmp_path / REPORT_MD).read_text()
    assert (tmp_path / REPORT_JSON).is_file()


def test_rows_without_latency_still_report(tmp_path):
    rows = [{k: v for k, v in r.items() if not k.startswith("p")} | {"precision": r["precision"]} for r in ROWS]
    report = write_report(rows, tmp_path)
    assert not (tmp_path / PLOT_PNG).exists() and any("no row has both" in n for n in report.notes)


def _kit_report(folder):
    """A kit-report.json as edgeres.kit.build_kit writes it on a Jetson."""
    folder.mkdir(parents=True)
    write_json_atomic(folder / "kit-report.json", {
        "schema": "edgeres-kit-report", "schema_version": 1, "edgeres_version": "0.1.0",
        "title": "kit report: jetson-orin on Orin", "created": "2026-11-23T10:00:00+00:00",
        "kit": "/home/nvidia/kit", "target": "jetson-orin", "model": MODEL,
        "environment": {"tensorrt": "10.3.0", "gpu": {"name": "Orin", "compute_capability": "8.7"},
                        "dla_cores": 2, "edgeres": "0.1.0"},
        "timing": {"where": "device", "what": "host wall clock per call, H2D + execute + D2H", "batch": [1, 8],
                   "warmup": 10, "iterations": 100},
        "notes": [], "validation": {"n": 256, "labels": True},
        "rows": [{"precision": p, "execution_precision": p,
                  "accuracy": {"n": 256, "top1": acc, "top5": 1.0, "agreement": agr, "cosine": 0.999,
                               "top1_drop": 0.953 - acc},
                  "latency": [{"batch_size": 1, "p50_ms": lat, "p99_ms": lat * 1.2, "throughput": 1000 / lat},
                              {"batch_size": 8, "p50_ms": lat * 4, "p99_ms": lat * 5, "throughput": 8000 / lat / 4}],
                  "size_bytes": size, "build_seconds": 40.0, "fidelity_only": False,
                  "device": "Orin (sm 8.7)", "timed": "host wall clock", "notes": [], "extra": {"typed_mode": "weak"}}
                 for p, acc, agr, lat, size in (("fp16", 0.953, 1.0, 2.1, 50_000_000),
                                                ("int8", 0.948, 0.99, 1.2, 26_000_000))],
    })
    return folder


def test_merge_build_and_kit_report(tmp_path, capsys):
    write_report(ROWS, tmp_path / "intel", timing=TIMING, model=MODEL, title="intel build")
    kit = _kit_report(tmp_path / "kit" / "engines")
    merged = merge_reports([tmp_path / "intel", kit])
    sources = {r.source for r in merged.rows}
    assert len(merged.rows) == 5 and len(sources) == 2 and "Orin" in sources
    jetson = [r for r in merged.rows if r.target == "jetson-orin"]
    assert [(r.backend, r.precision, r.p50_ms, r.batch) for r in jetson] == [("tensorrt", "fp16", 2.1, 1),
                                                                           ("tensorrt", "int8", 1.2, 1)]
    assert merged.model == MODEL and len(merged.merged_from) == 2

    out = tmp_path / "merged"
    assert main(["report", str(tmp_path / "intel"), str(kit), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[1].split()[0] == "from" and "jetson-orin" in text and "written to" in text
    md = (out / REPORT_MD).read_text()
    assert "### Orin" in md and "- where: device" in md and "batch sizes: 1, 8 (the table shows batch 1)" in md
    assert "tensorrt: 10.3.0" in md and "- gpu: name Orin, compute_capability 8.7" in md
    _png(out / PLOT_PNG)
    data = read_json(out / REPORT_JSON)
    assert len(data["merged_from"]) == 2 and all(r["source"] for r in data["rows"])

    # a merged report merges again, keeping its sources
    assert main(["report", str(out), str(tmp_path / "intel"), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert len(again["rows"]) == 8 and len(again["merged_from"]) == 2  # the intel machine is one source


def test_report_cli_single_and_errors(tmp_path, capsys):
    write_report(ROWS, tmp_path / "one", timing=TIMING)
    assert main(["report", str(tmp_path / "one")]) == 0
    out = capsys.readouterr().out
    assert "intel-cpu" in out and "from" not in out.splitlines()[1]
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert "has no report.json or kit-report.json" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "bad.json").write_text('{"schema": "edgeres.report", "schema_version": 7, "rows": []}')
    assert main(["report", str(tmp_path / "bad.json")]) == 1
    assert "newer than this edgeres understands" in capsys.readouterr().err


def test_environment_is_torch_free_and_complete():
    import sys

    had_torch = "torch" in sys.modules
    env = environment()
    assert env["edgeres"] and env["python"] and env["cpu_count"] >= 1
    assert "torch" in env["packages"]
    if not had_torch:
        assert "torch" not in sys.modules, "reading versions must not import torch"


def test_report_accepts_a_kit_folder(tmp_path, capsys):
    """`edgeres report OUT kit-jetson-orin`: the kit's report lands in its engines/ folder."""
    write_report(ROWS, tmp_path / "intel", timing=TIMING, model=MODEL)
    kit = tmp_path / "kit-jetson-orin"
    (kit / "kit.json").parent.mkdir()
    (kit / "kit.json").write_text("{}")
    assert main(["report", str(tmp_path / "intel"), str(kit)]) == 1
    assert "has no report yet: run `edgeres kit build kit-jetson-orin`" in capsys.readouterr().err
    _kit_report(kit / "engines")
    assert main(["report", str(tmp_path / "intel"), str(kit), "--out", str(tmp_path / "m")]) == 0
    assert "jetson-orin" in capsys.readouterr().out
