"""`--json` prints exactly one JSON document on stdout, whatever the backend writes.

NNCF and OpenVINO write progress bars and C++ logs to file descriptor 1, so the check must see
the real fd 1: one child process runs every command that has ``--json`` (builds for cpu,
intel-cpu and the jetson kit, then bench, validate, info, doctor, targets, report, kit show,
export, quantize, package), each with fd 1 pointed at its own file, and the tests parse those.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--depth", "18", "--num-classes", "10", "--input-size", "32", "--calib", "demo", "--calib-size", "32",
         "--val", "demo-val", "--val-size", "48", "--bench-seconds", "0.1"]

# Runs each command in this process with fd 1 on a file of its own: what a shell pipe would read.
DRIVER = r"""
import json, os, sys
from edgeres.cli import main
results = {}
for name, argv in json.loads(sys.argv[1]):
    path = os.path.join(sys.argv[2], name + ".out")
    sys.stdout.flush()
    saved = os.dup(1)
    with open(path, "wb") as f:
        os.dup2(f.fileno(), 1)
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        sys.stdout.flush()
        os.dup2(saved, 1)
    os.close(saved)
    results[name] = code
print(json.dumps(results))
"""


def commands(out: Path) -> list[tuple[str, list[str]]]:
    cpu, intel, jetson = out / "cpu", out / "intel", out / "jetson"
    fp32 = str(cpu / "onnx" / "model.onnx")
    return [
        ("build-cpu", ["build", "--target", "cpu", *SMALL, "--out", str(cpu), "--json"]),
        ("build-intel-cpu", ["build", "--target", "intel-cpu", *SMALL, "--out", str(intel), "--json"]),
        ("build-jetson", ["build", "--target", "jetson", *SMALL, "--out", str(jetson), "--json"]),
        ("bench", ["bench", str(cpu / "bundle"), "--iterations", "3", "--warmup", "0", "--json"]),
        ("validate", ["validate", str(cpu / "bundle.tar.gz"), "--val", "demo-val", "--limit", "24", "--reference",
                      fp32, "--json"]),
        ("info", ["info", "--depth", "18", "--json"]),
        ("doctor", ["doctor", "--json"]),
        ("targets", ["targets", "--json"]),
        ("targets-show", ["targets", "show", "intel-cpu", "--json"]),
        ("report", ["report", str(cpu), str(intel), "--json"]),
        ("kit-show", ["kit", "show", str(jetson / "kit-jetson-orin"), "--json"]),
        ("export", ["export", "--depth", "18", "--num-classes", "10", "--input-size", "32",
                    "--out", str(out / "export"), "--json"]),
        ("quantize", ["quantize", fp32, "--calib", "demo", "--calib-size", "16", "--out", str(out / "q"), "--json"]),
        ("package", ["package", fp32, "--target", "cpu", "--out", str(out / "pkg"), "--json"]),
        ("error", ["bench", str(out / "missing.onnx"), "--json"]),
    ]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    pytest.importorskip("openvino")
    out = tmp_path_factory.mktemp("json")
    cmds = commands(out)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cmds), str(out)], capture_output=True,
                          text=True, env=env, cwd=ROOT, check=False, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    codes = json.loads(proc.stdout)
    return {name: (codes[name], (out / f"{name}.out").read_text()) for name, _ in cmds}


def _walk(doc, key):
    """Every value of ``key`` anywhere in a JSON document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(doc, list):
        for v in doc:
            yield from _walk(v, key)


NAMES = [name for name, _ in commands(Path("x"))]


@pytest.mark.parametrize("name", NAMES)
def test_every_json_command_prints_exactly_one_versioned_document(outputs, name):
    code, stdout = outputs[name]
    doc = json.loads(stdout)  # the whole of stdout: one document, no progress bars, no logs
    assert isinstance(doc, dict) and str(doc["schema"]).startswith("edgeres")
    assert isinstance(doc["schema_version"], int)
    assert code == (1 if name == "error" else 0)
    for threads in _walk(doc, "threads"):
        assert threads is None or (isinstance(threads, int) and not isinstance(threads, bool)), (name, threads)


def test_a_failing_command_still_prints_one_document_naming_the_error(outputs):
    _, stdout = outputs["error"]
    doc = json.loads(stdout)
    assert doc["schema"] == "edgeres.bench" and doc["exit_code"] == 1 and "does not exist" in doc["error"]


def test_build_documents_name_the_recommended_row_and_each_rows_interval(outputs):
    for name in ("build-cpu", "build-intel-cpu"):
        doc = json.loads(outputs[name][1])
        assert doc["schema"] == "edgeres.build" and doc["recommended"] in {r["precision"] for r in doc["rows"]}
        for row in doc["rows"]:
            loss = row["loss"]
            assert loss["low"] <= loss["loss"] <= loss["high"] and loss["n"] == row["n_val"] == 48
            assert row["recommended"] == (row["precision"] == doc["recommended"])
        report = json.loads(Path(doc["report"]).read_text())
        (rec,) = report["recommended"]
        assert report["rows"][rec["row"]]["precision"] == doc["recommended"]


def test_top5_is_top5_or_absent(outputs):
    doc = json.loads(outputs["validate"][1])
    assert doc["accuracy"]["top5"] is not None  # 10 classes: top-5 is top-5
    assert all(v is None or 0 <= v <= 1 for v in _walk(json.loads(outputs["report"][1]), "top5"))
