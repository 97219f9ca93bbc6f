"""`edgeres build` end to end: a small ResNet-18 (32x32, 10 classes) on the real digits,
for the cpu and intel-cpu targets, a device kit for jetson, reuse, locking and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_bundle_support import NO_TORCH

from edgeres.cli import main
from edgeres.data import demo_digits_dir
from edgeres.errors import EdgeresError
from edgeres.fileio import read_json
from edgeres.pipeline import BuildRequest, build
from edgeres.stages import RECORDS, exclusive

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--depth", "18", "--num-classes", "10", "--input-size", "32", "--calib", "demo", "--calib-size", "32",
         "--val", "demo-val", "--val-size", "48", "--bench-seconds", "0.1"]


def request(target: str, out: Path, **overrides) -> BuildRequest:
    fields = {"target": target, "depth": 18, "out_dir": out, "num_classes": 10, "input_size": 32, "calib": "demo", "calib_size": 32,
                  "val": "demo-val", "val_size": 48, "bench_seconds": 0.1}
    return BuildRequest(**{**fields, **overrides})


@pytest.fixture(scope="module")
def cpu_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "cpu"
    return build(request("cpu", out))


def test_cpu_build_measures_every_precision_against_fp32(cpu_build):
    rows = {r["precision"]: r for r in cpu_build.rows}
    assert set(rows) == {"fp32", "int8"}
    assert rows["fp32"]["agreement"] == 1.0
    assert rows["int8"]["agreement"] is not None and rows["int8"]["p50_ms"] > 0
    assert rows["int8"]["centred_cosine"] is not None  # beside the plain cosine
    interval = rows["int8"]["loss"]  # what INT8 costs, with its paired 95% interval, on the same images
    assert interval["n"] == 48 and interval["low"] <= interval["loss"] <= interval["high"]
    assert all(r["fidelity_only"] for r in rows.values())  # random weights: top-1 says nothing
    report = read_json(cpu_build.out_dir / "report.json")
    assert {r["precision"] for r in report["rows"]} == {"fp32", "int8"}
    assert (cpu_build.out_dir / "report.md").is_file() and (cpu_build.out_dir / "accuracy_latency.png").is_file()
    assert any("random weights" in n for n in report["notes"])


def test_every_row_reports_frame_to_topk_latency_and_fused_agreement(cpu_build):
    for row in cpu_build.rows:
        frames = row["extra"]["frames"]
        assert row["e2e_host_p50_ms"] > 0 and row["e2e_fused_p50_ms"] > 0 and frames["engine_p50_ms"] > 0
        assert frames["agreement"]["frames"] == 32 and frames["agreement"]["top1_agreement"] >= 0.95
    text = (cpu_build.out_dir / "report.md").read_text()
    assert "e2e p50" in text and "a camera frame (uint8" in text


def test_build_writes_a_verified_bundle_of_the_recommended_precision(cpu_build):
    assert cpu_build.recommended in ("fp32", "int8")
    manifest = read_json(cpu_build.bundle / "manifest.json")
    assert manifest["precision"] == cpu_build.recommended and manifest["target"]["name"] == "cpu"
    assert Path(str(cpu_build.bundle) + ".tar.gz").is_file()


def test_rerun_with_identical_inputs_reuses_every_stage(cpu_build, capsys):
    again = build(request("cpu", cpu_build.out_dir))
    assert again.stages and all(s["reused"] for s in again.stages)
    assert "reused" in capsys.readouterr().err
    assert again.rows == cpu_build.rows


def test_rebench_measures_again_without_rebuilding(cpu_build):
    again = build(request("cpu", cpu_build.out_dir, rebench=True))
    state = {s["stage"]: s["reused"] for s in again.stages}
    assert state["export onnx"] and state["INT8 Q/DQ (calibrate)"] and state["build onnxruntime fp32"]
    assert not state["validate + bench fp32"] and not state["validate + bench int8"]
    for row in again.rows:  # each figure says how many runs and which throughput mode
        assert row["runs"] >= 50 and "batch" in row["throughput_label"] and "request" in row["throughput_label"]


def test_changed_input_reruns_only_what_depends_on_it(cpu_build, tmp_path):
    again = build(request("cpu", cpu_build.out_dir, method="minmax"))
    state = {s["stage"]: s["reused"] for s in again.stages}
    assert state["export onnx"] and state["FP32 reference (onnxruntime)"]
    assert not state["INT8 Q/DQ (calibrate)"]


def test_bundle_from_a_build_classifies_in_a_process_without_torch(cpu_build, tmp_path):
    image = min((demo_digits_dir("val") / "3").iterdir())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, str(cpu_build.bundle) + ".tar.gz", str(image), "--json"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["results"]) == 1 and "TORCH_MODULES []" in proc.stderr


def test_intel_cpu_build_runs_openvino_and_skips_what_the_cpu_lacks(tmp_path):
    result = build(request("intel-cpu", tmp_path / "ov", precisions=["all"]))
    built = {r["precision"] for r in result.rows}
    assert {"fp32", "int8"} <= built
    assert all(r["backend"] == "openvino" and r["execution_precision"] for r in result.rows)
    for p in {"bf16", "fp16"} - built:
        assert any(w.startswith(f"{p} skipped on this machine") for w in result.warnings)


def test_jetson_build_without_tensorrt_writes_a_device_kit(tmp_path, capsys):
    assert main(["build", "--target", "jetson", *SMALL, "--out", str(tmp_path / "j"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    kit = Path(result["kit"])
    assert result["rows"] == [] and kit.name == "kit-jetson-orin"
    kit_json = read_json(kit / "kit.json")
    assert kit_json["precisions"] == ["fp32", "fp16", "int8"]  # jetson-orin's defaults, fp32 the reference
    assert Path(str(kit) + ".tar.gz").is_file()
    # every ONNX the kit ships ran here within tolerance, and the quantizer's Q/DQ passes TensorRT's rules
    proof = kit_json["proof"]
    assert sorted(proof["onnx"]) == sorted(kit_json["onnx"].values())
    assert all(c["ok"] for c in proof["onnx"].values()) and all(e["ok"] for e in proof["lint"].values())
    md = (tmp_path / "j" / "report.md").read_text(encoding="utf-8")   # no empty table, no "None runs"
    assert "No measured rows" in md and "None" not in md and "| target |" not in md
    assert f"edgeres report {tmp_path / 'j'} {kit} --out" in md


def test_second_build_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "busy"
    with exclusive(out), pytest.raises(EdgeresError, match="another edgeres build is writing"):
        build(request("cpu", out))


def test_interrupted_build_leaves_no_partial_artifact_and_resumes(tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edgeres.cli", "build", "--target", "cpu", *SMALL, "--out",
                             str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = out / RECORDS / "export onnx.json"
    deadline = time.monotonic() + 300
    while not record.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert record.exists(), "the build never finished its first stage"
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]
    assert not leftovers
    resumed = build(request("cpu", out))
    state = {s["stage"]: s["reused"] for s in resumed.stages}
    assert state["export onnx"] is True
    assert (out / "report.json").is_file()


def test_changed_target_option_remeasures_and_rebundles(cpu_build, tmp_path):
    text = (ROOT / "targets" / "cpu.toml").read_text()
    custom = tmp_path / "targets"
    custom.mkdir()
    assert "threads = 0 " in text
    (custom / "cpu.toml").write_text(text.replace("threads = 0 ", "threads = 1 "))
    again = build(request("cpu", cpu_build.out_dir, targets_dir=custom))
    state = {s["stage"]: s["reused"] for s in again.stages}
    assert state["export onnx"] and not state["build onnxruntime fp32"]
    assert not state["validate + bench fp32"] and not state[f"bundle ({again.recommended})"]


def test_recommendation_reads_agreement_when_top1_means_nothing():
    from edgeres.pipeline import recommend

    rows = [{"precision": "fp32", "p50_ms": 2.0, "top1_drop": 0.0, "agreement": 1.0},
            {"precision": "int8", "p50_ms": 1.0, "top1_drop": 0.0, "agreement": 0.93}]
    assert recommend(rows, budget=0.5, labeled=True) == "int8"
    assert recommend(rows, budget=0.5, labeled=False) == "fp32"  # random weights: 7 points of agreement lost


@pytest.mark.parametrize("argv,message,code", [
    (["build", "--target", "intel-cpu", "--depth", "18", "--method", "minmax"], "calibrates INT8", 2),
    (["build", "--target", "cpu", "--depth", "18", "--val-size", "10"], "--val-size needs --val", 2),
    (["build", "--target", "cpu", "--depth", "18", "--num-classes", "0"], "--num-classes: must be at least 1", 2),
    (["build", "--target", "cpu", "--depth", "18", "--bench-seconds", "0"], "--bench-seconds: must be more than 0", 2),
    (["build", "--target", "cpu", "--depth", "42"], "unsupported depth 42", 2),
    (["build", "--target", "cpux", "--depth", "18"], "unknown target 'cpux'", 2),
    (["build", "--target", "jetson-nan", "--depth", "18"], "Did you mean 'jetson-nano'?", 2),
    (["build", "--target", "jetson-nano", "--depth", "18", "--precision", "int8"],
     "precision 'int8' is not one of them: no fast INT8 on Maxwell", 2),
    (["build", "--target", "cpu", "--depth", "18", "--precision", "bf16"], "precision 'bf16' is not one of them", 2),
    (["build", "--target", "cpu", "--depth", "18", "--calib", "/no/such/folder"], "does not exist", 1),
])
def test_build_mistakes_are_one_line(tmp_path, capsys, argv, message, code):
    assert main([*argv, "--out", str(tmp_path / "x")]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
