"""What kit build records about the device: L4T/JetPack, power mode, clock lock state; and the kit
build on a fake TensorRT 11 Jetson with unlocked clocks."""

from __future__ import annotations

import json
import sys

import pytest
from test_kit import CLASSES, _write, make_tiny_onnx
from trt_fakes import FakeCuda, make_tensorrt

from edgeres.backends import tensorrt_cuda as trt_cuda
from edgeres.backends import tensorrt_device as dev
from edgeres.kit import build_kit

CLOCKS_LOCKED = """\
SOC family:tegra234  Machine:NVIDIA Jetson AGX Orin Developer Kit
Online CPUs: 0-11
cpu0: Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0
GPU MinFreq=1300500000 MaxFreq=1300500000 CurrentFreq=1300500000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=1
NV Power Mode: MAXN
"""


def _fake_jetson(tmp_path, locked: bool | None, release="# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic"):
    etc, proc, sysfs = tmp_path / "etc", tmp_path / "proc", tmp_path / "sys"
    etc.mkdir(parents=True)
    (etc / "nv_tegra_release").write_text(release + ", EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n")
    (proc / "device-tree").mkdir(parents=True)
    (proc / "device-tree" / "model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\0")
    gpu = sysfs / "class" / "devfreq" / "17000000.gpu"
    gpu.mkdir(parents=True)
    for name, value in (("min", 306000000 if not locked else 1300500000), ("max", 1300500000), ("cur", 612000000)):
        (gpu / f"{name}_freq").write_text(f"{value}\n")

    def run(argv):
        if argv[0] == "nvpmodel":
            return "NV Power Mode: 15W\n1\n"
        return None  # jetson_clocks --show needs root: not readable here

    return {"etc": etc, "proc": proc, "sys_root": sysfs, "run": run, "cuda_root": tmp_path / "cuda"}


@pytest.mark.parametrize("text,l4t,jetpack", [
    ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref", "35.4.1", "5.1.2"),
    ("# R36 (release), REVISION: 4.0, GCID: 37537400", "36.4.0", "6.1"),
    ("# R36 (release), REVISION: 4.3, GCID: 38968081", "36.4.3", "6.2"),
    ("# R32 (release), REVISION: 7.4, GCID: 33514132", "32.7.4", "4.6.x"),
])
def test_l4t_release_and_jetpack(text, l4t, jetpack):
    assert dev.parse_l4t(text) == {"l4t": l4t, "jetpack": jetpack}


def test_power_mode_and_clock_parsers():
    assert dev.parse_nvpmodel("NV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0}
    clocks = dev.parse_jetson_clocks(CLOCKS_LOCKED)
    assert clocks["locked"] is True and clocks["gpu_max_hz"] == 1300500000
    assert dev.parse_jetson_clocks("GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=306000000")["locked"] is False
    assert dev.parse_l4t("not a release file") is None and dev.parse_nvpmodel("") is None


def test_probe_reads_release_power_mode_and_sysfs_clocks(tmp_path):
    facts = dev.probe(**_fake_jetson(tmp_path, locked=False))
    assert facts["board"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert (facts["l4t"], facts["jetpack"]) == ("36.4.3", "6.2")
    assert facts["nvpmodel"] == {"name": "15W", "id": 1}
    assert facts["clocks_locked"] is False and facts["clocks"]["gpu_min_hz"] == 306000000
    assert "unlocked" in dev.clock_note(facts) and "jetson_clocks" in dev.clock_note(facts)
    locked = dev.probe(**_fake_jetson(tmp_path / "l", locked=True))
    assert locked["clocks_locked"] is True and dev.clock_note(locked) is None


def test_probe_on_a_machine_that_is_not_a_jetson(tmp_path):
    facts = dev.probe(etc=tmp_path, proc=tmp_path, sys_root=tmp_path, run=lambda argv: None, cuda_root=tmp_path)
    assert facts["l4t"] is None and facts["nvpmodel"] is None and facts["clocks_locked"] is None
    assert dev.clock_note(facts) is None          # desktop GPUs: nothing to lock, no warning


def test_kit_build_on_tensorrt_11_jetson_records_device_and_marks_unlocked_clocks(tmp_path, monkeypatch):
    models = make_tiny_onnx(tmp_path / "m" / "model.onnx"), make_tiny_onnx(tmp_path / "m" / "q.onnx", qdq=True)
    calls: list = []
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("11.4.1.2", calls, dla_cores=2,
                                                               input_shape=(-1, 3, 16, 16), classes=CLASSES))
    monkeypatch.setattr(trt_cuda, "cuda_runtime", lambda: FakeCuda(cc=(8, 7)))
    fake = _fake_jetson(tmp_path, locked=False)
    real_probe = dev.probe
    monkeypatch.setattr(dev, "probe", lambda **kw: real_probe(**fake))
    res = _write(tmp_path, models, slice_size=12)
    report = build_kit(res.path, iterations=2, min_seconds=0, warmup=0, batch_sizes=[1])
    env = report["environment"]
    assert env["recipe"] == "trt11" and env["device"]["jetpack"] == "6.2" and env["device"]["tensorrt"] == "11.4.1.2"
    assert env["device"]["compute_capability"] == "8.7" and env["device"]["dla_cores"] == 2
    assert report["timing"]["clocks_locked"] is False
    assert any(n.startswith("clocks unlocked (power mode 15W)") for n in report["notes"])
    rows = {r["precision"]: r for r in report["rows"]}
    assert list(rows) == ["fp32", "fp16", "fp16 @ dla0", "int8", "int8 @ dla0"]
    assert all(r["extra"]["typed_mode"] == "strong" and r["extra"]["clocks_locked"] is False for r in rows.values())
    assert rows["int8"]["extra"]["onnx"] == "onnx/model_int8_qdq_fp16.onnx"
    assert rows["int8"]["execution_precision"] == "int8+fp16"
    assert rows["fp16"]["extra"]["onnx"] == "onnx/model_fp16.onnx"
    assert [c for c in calls if c[0] == "set_flag"] == [("set_flag", "GPU_FALLBACK")] * 2   # DLA rows only
    on_disk = json.loads((res.path / "engines" / "kit-report.json").read_text())
    assert on_disk["environment"]["device"]["nvpmodel"] == {"name": "15W", "id": 1}
