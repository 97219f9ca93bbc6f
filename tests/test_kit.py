"""Device build kits: contents, kit.json schema, validation slice, refusals, and the device-side
build driven through fakes (the real TensorRT path runs only on a GPU)."""

from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper
from trt_fakes import FakeCuda, make_tensorrt

from edgeres.backends import tensorrt as trt_backend
from edgeres.backends import tensorrt_cuda as trt_cuda
from edgeres.backends.tensorrt_fp16 import fp16_copy
from edgeres.cli import main
from edgeres.data import PreprocessSpec
from edgeres.errors import EdgeresError
from edgeres.kit import KIT_SCHEMA, KIT_SCHEMA_VERSION, build_kit, load_kit, write_kit
from edgeres.onnxutil import is_quantized, onnx_input_spec

CLASSES = 4


def make_tiny_onnx(path: Path, qdq: bool = False, size: int = 16) -> Path:
    """Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm, dynamic batch; optionally Q/DQ on the conv input."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "W"),
             numpy_helper.from_array(rng.standard_normal(8).astype(np.float32) * 0.1, "B"),
             numpy_helper.from_array(rng.standard_normal((CLASSES, 8)).astype(np.float32), "FC"),
             numpy_helper.from_array(np.zeros(CLASSES, np.float32), "FCB")]
    nodes = []
    conv_in = "input"
    if qdq:
        inits += [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                  numpy_helper.from_array(np.array(0, np.int8), "z")]
        nodes += [helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]),
                  helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"])]
        conv_in = "dq"
    nodes += [helper.make_node("Conv", [conv_in, "W", "B"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c"], ["r"]),
              helper.make_node("GlobalAveragePool", ["r"], ["p"]),
              helper.make_node("Flatten", ["p"], ["f"]),
              helper.make_node("Gemm", ["f", "FC", "FCB"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                            ["N", 3, size, size])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _slice(n=40, size=16, labels=True):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, 3, size, size)).astype(np.float32)
    ref = _reference(x)                              # the FP32 model's logits: the fake engine runs it too
    y = ref.argmax(1).astype(np.int64) if labels else None
    return x, y, ref


_TINY: dict[int, Path] = {}


def _reference(x):
    ort = pytest.importorskip("onnxruntime")
    size = x.shape[-1]
    if size not in _TINY:
        _TINY[size] = make_tiny_onnx(Path(tempfile.mkdtemp(prefix="edgeres-tiny-")) / "tiny.onnx", size=size)
    return ort.InferenceSession(str(_TINY[size])).run(None, {"input": x})[0]


@pytest.fixture
def models(tmp_path):
    return make_tiny_onnx(tmp_path / "m" / "model.onnx"), make_tiny_onnx(tmp_path / "m" / "model_int8.onnx", qdq=True)


def _write(tmp_path, models, target="jetson", precisions=("fp32", "fp16", "int8"), **kw):
    fp32, qdq = models
    x, y, ref = _slice(**kw.pop("slice_kw", {}))
    return write_kit(tmp_path / "kit-jetson", target=target, fp32_onnx=fp32, qdq_onnx=qdq, precisions=precisions,
                     inputs=x, labels=y, reference_logits=ref, preprocess=PreprocessSpec.for_size(16),
                     model={"name": "tiny", "num_classes": CLASSES}, **kw)


def test_kit_contents_and_schema(tmp_path, models):
    res = _write(tmp_path, models, slice_size=32)
    root = res.path
    m = json.loads((root / "kit.json").read_text())
    assert m["schema"] == KIT_SCHEMA and m["schema_version"] == KIT_SCHEMA_VERSION
    assert m["target"]["name"] == "jetson-orin" and m["precisions"] == ["fp32", "fp16", "int8"]
    assert m["min_tensorrt"] == "8.5"
    assert m["profiles"] == {"batch": "1:1:8", "input": "input", "min": [1, 3, 16, 16], "opt": [1, 3, 16, 16],
                             "max": [8, 3, 16, 16]}
    assert m["onnx"] == {"fp32": "onnx/model_fp32.onnx", "int8": "onnx/model_int8_qdq.onnx",
                         "int8_fp16": "onnx/model_int8_qdq_fp16.onnx", "fp16": "onnx/model_fp16.onnx"}
    recipes = {r["name"]: {e["variant"]: e for e in r["engines"]} for r in m["recipes"]}
    assert list(recipes) == ["trt8.5-10.11", "trt10.12-10.x", "trt11"]
    # GPU engines for every precision, DLA rows beside fp16/int8 (the target declares 2 DLA cores)
    assert list(recipes["trt11"]) == ["fp32", "fp16", "fp16 @ dla0", "int8", "int8 @ dla0"]
    weak, strong, eleven = recipes["trt8.5-10.11"], recipes["trt10.12-10.x"], recipes["trt11"]
    assert weak["int8"]["onnx"] == "onnx/model_int8_qdq.onnx" and "--int8 --fp16" in weak["int8"]["build"]
    assert "--useDLACore" not in weak["int8"]["build"]
    assert "--useDLACore=0 --allowGPUFallback" in weak["int8 @ dla0"]["build"]
    assert "--useDLACore=0" in weak["int8 @ dla0"]["bench"] and "--dumpProfile --separateProfileRun" in \
        weak["int8 @ dla0"]["bench"]
    assert strong["int8"]["onnx"] == eleven["int8"]["onnx"] == "onnx/model_int8_qdq_fp16.onnx"
    assert strong["int8"]["execution_precision"] == weak["int8"]["execution_precision"] == "int8+fp16"
    assert "--stronglyTyped" in strong["fp16"]["build"] and "--stronglyTyped" not in eleven["fp16"]["build"]
    assert strong["fp16"]["onnx"] == "onnx/model_fp16.onnx" and weak["fp16"]["onnx"] == "onnx/model_fp32.onnx"
    proof = m["proof"]
    assert set(proof["onnx"]) == set(m["onnx"].values())
    for rel, check in proof["onnx"].items():
        assert check["ok"] and check["n"] == 32 and check["agreement"] >= check["tolerance"]["min_agreement"], rel
        assert "onnxruntime" in check["runtime"]
    assert proof["lint"]["onnx/model_int8_qdq.onnx"] == {"recipes": ["trt8.5-10.11"], "violations": [], "lines": [],
                                                         "ok": True}
    assert proof["lint"]["onnx/model_int8_qdq_fp16.onnx"]["ok"]
    assert proof["conversions"]["fp16"]["converter"].startswith("onnxconverter-common")
    assert m["validation"]["n"] == 32 and m["validation"]["num_classes"] == CLASSES
    assert m["preprocess"] == "preprocess.json" and m["model"]["name"] == "tiny"
    on_disk = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert on_disk == sorted([*m["files"], "kit.json", "README.md"])
    assert json.loads((root / "preprocess.json").read_text())["crop"] == 16
    readme = (root / "README.md").read_text()
    for part in ["edgeres kit build kit-jetson", "trtexec --onnx=onnx/model_int8_qdq.onnx", "--int8 --fp16",
                 "--stronglyTyped", "--minShapes=input:1x3x16x16", "--maxShapes=input:8x3x16x16",
                 "--timingCacheFile=engines/timing.cache", "--useDLACore=0 --allowGPUFallback",
                 "--saveEngine=engines/model_int8.engine", "--saveEngine=engines/model_int8_dla0.engine",
                 "--memPoolSize=workspace:1024", "--noTF32", "### TensorRT 11.x", "trtexec --loadEngine=",
                 "Checked on the host", "| `onnx/model_int8_qdq_fp16.onnx` | 32 |"]:
        assert part in readme, part
    assert res.tarball is not None and res.tarball.name == "kit-jetson.tar.gz"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_validation_slice_round_trip_through_tarball(tmp_path, models):
    res = _write(tmp_path, models, slice_size=25)
    x, y, ref = _slice()
    dest = tmp_path / "device"
    dest.mkdir()
    kit = load_kit(res.tarball, extract_to=dest)
    assert kit.root == dest / "kit-jetson"
    kit.verify()
    xi, yi, ri = kit.validation()
    np.testing.assert_array_equal(xi, x[:25])
    np.testing.assert_array_equal(yi, y[:25])
    np.testing.assert_array_equal(ri, ref[:25])
    assert xi.dtype == np.float32 and yi.dtype == np.int64
    assert kit.target().name == "jetson-orin" and str(kit.batch()) == "1:1:8"


def test_kit_without_labels(tmp_path, models):
    res = _write(tmp_path, models, precisions=["fp16"], slice_kw={"labels": False})
    kit = load_kit(res.path)
    assert kit.manifest["validation"]["labels"] is None and kit.validation()[1] is None
    assert set(kit.manifest["onnx"]) == {"fp32", "fp16"}


def test_fp16_copy_matches_fp32_on_onnxruntime(tmp_path, models):
    ort = pytest.importorskip("onnxruntime")
    fp32, _ = models
    out = fp16_copy(fp32, tmp_path / "fp16.onnx").path
    m = onnx.load(str(out))
    assert {i.data_type for i in m.graph.initializer} == {TensorProto.FLOAT16}
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT       # I/O stays FP32
    assert m.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    x = _slice(8)[0]
    a = ort.InferenceSession(str(fp32)).run(None, {"input": x})[0]
    b = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
    assert b.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=0.05, rtol=0.02)
    assert onnx_input_spec(out) == {"name": "input", "shape": ["N", 3, 16, 16], "dtype": "float32"}


def test_fp16_copy_refuses_qdq(tmp_path, models):
    with pytest.raises(EdgeresError, match="Q/DQ"):
        fp16_copy(models[1], tmp_path / "x.onnx")
    assert is_quantized(onnx.load(str(models[1]))) and not is_quantized(onnx.load(str(models[0])))


def test_nano_kit_refuses_int8_with_reason(tmp_path, models):
    with pytest.raises(EdgeresError) as exc:
        _write(tmp_path, models, target="jetson-nano", precisions=["fp16", "int8"])
    assert "jetson-nano does not support int8: no fast INT8 on Maxwell (compute capability 5.3)" in str(exc.value)
    assert not (tmp_path / "kit-jetson").exists()
    res = _write(tmp_path, models, target="jetson-nano", precisions=["fp16"])
    assert [r["name"] for r in res.manifest["recipes"]] == ["trt8.2-8.4"]   # Nano's JetPack 4.6 has TensorRT 8.2


def test_int8_kit_needs_a_qdq_onnx(tmp_path, models):
    fp32, _ = models
    x, y, ref = _slice()
    with pytest.raises(EdgeresError, match="not a Q/DQ"):
        write_kit(tmp_path / "k", target="jetson", fp32_onnx=fp32, qdq_onnx=fp32, precisions=["int8"],
                  inputs=x, labels=y, reference_logits=ref, preprocess=PreprocessSpec.for_size(16))
    with pytest.raises(EdgeresError, match="needs the Q/DQ ONNX"):
        write_kit(tmp_path / "k", target="jetson", fp32_onnx=fp32, qdq_onnx=None, precisions=["int8"],
                  inputs=x, labels=y, reference_logits=ref, preprocess=PreprocessSpec.for_size(16))


def test_bad_slices_refused(tmp_path, models):
    fp32, qdq = models
    x, y, ref = _slice()
    common = {"target": "jetson", "fp32_onnx": fp32, "qdq_onnx": qdq, "precisions": ["fp16"],
              "preprocess": PreprocessSpec.for_size(16)}
    with pytest.raises(EdgeresError, match="reference logits"):
        write_kit(tmp_path / "k", inputs=x, labels=y, reference_logits=ref[:3], **common)
    with pytest.raises(EdgeresError, match="expects"):
        write_kit(tmp_path / "k", inputs=x[:, :, :8, :8], labels=y, reference_logits=ref, **common)
    with pytest.raises(EdgeresError, match="not TensorRT"):
        write_kit(tmp_path / "k", inputs=x, labels=y, reference_logits=ref, **{**common, "target": "cpu"})


def test_tampered_kit_refused(tmp_path, models):
    res = _write(tmp_path, models, precisions=["fp16"])
    (res.path / "validation" / "labels.npy").write_bytes(b"junk")
    with pytest.raises(EdgeresError, match="validation/labels.npy does not match its sha256"):
        load_kit(res.path).verify()
    (res.path / "onnx" / "model_fp16.onnx").unlink()
    with pytest.raises(EdgeresError, match="missing onnx/model_fp16.onnx"):
        load_kit(res.path).verify()


def test_newer_schema_refused(tmp_path, models):
    res = _write(tmp_path, models, precisions=["fp16"])
    m = json.loads((res.path / "kit.json").read_text())
    m["schema_version"] = 99
    (res.path / "kit.json").write_text(json.dumps(m))
    with pytest.raises(EdgeresError, match="upgrade edgeres"):
        load_kit(res.path)
    with pytest.raises(EdgeresError, match="no kit.json"):
        load_kit(tmp_path)


@pytest.mark.parametrize("name,kind", [("../evil.txt", "file"), ("/abs.txt", "file"), ("kit/link", "symlink")])
def test_malicious_tarball_refused(tmp_path, name, kind):
    tar_path = tmp_path / "bad.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(EdgeresError, match="refused"):
        load_kit(tar_path)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_kit_show_cli_reads_a_tarball_without_unpacking_it_beside_it(tmp_path, models, capsys):
    res = _write(tmp_path, models)
    alone = tmp_path / "alone"
    alone.mkdir()
    tarball = Path(shutil.move(str(res.tarball), alone / res.tarball.name))
    assert main(["kit", "show", str(tarball)]) == 0
    out = capsys.readouterr().out
    assert "jetson-orin" in out and "onnx/model_int8_qdq.onnx" in out and "files verified" in out
    assert [p.name for p in alone.iterdir()] == [tarball.name]      # show is read-only


# --- the device side, on a fake TensorRT -------------------------------------------------------

@pytest.fixture
def fake_device(monkeypatch):
    def install(version="10.3.0.30", cc=(8, 7), dla_cores=2):
        calls: list = []
        monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt(version, calls, dla_cores=dla_cores,
                                                                   input_shape=(-1, 3, 16, 16), classes=CLASSES))
        monkeypatch.setattr(trt_cuda, "cuda_runtime", lambda: FakeCuda(cc=cc))
        return calls
    return install


def test_kit_build_on_fake_device_writes_reports(tmp_path, models, fake_device, capsys):
    calls = fake_device("10.3.0.30", cc=(8, 7), dla_cores=2)
    res = _write(tmp_path, models, slice_size=20)
    assert main(["kit", "build", str(res.tarball), "--iterations", "3", "--min-seconds", "0", "--warmup", "1", "--batch", "1,2",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    engines = tmp_path / "kit-jetson" / "engines"
    on_disk = json.loads((engines / "kit-report.json").read_text())
    assert on_disk["rows"] == report["rows"] and report["target"] == "jetson-orin"
    assert [r["precision"] for r in report["rows"]] == ["fp32", "fp16", "fp16 @ dla0", "int8", "int8 @ dla0"]
    for row in report["rows"]:
        acc = row["accuracy"]
        assert acc["n"] == 20 and acc["agreement"] >= 0.95   # the fake engine runs the kit's ONNX on ONNX Runtime
        assert [lat["batch_size"] for lat in row["latency"]] == ([1] if "dla" in row["precision"] else [1, 2])
        assert "host wall clock" in row["latency"][0]["timed"]
        assert "CUDA events" in row["extra"]["device_latency"][0]["timed"]
        assert row["extra"]["typed_mode"] == "weak"
        assert Path(row["extra"]["engine"]).is_file()
    gpu, dla = report["rows"][3], report["rows"][4]
    assert gpu["execution_precision"] == dla["execution_precision"] == "int8+fp16"
    assert gpu["extra"]["plan"]["dla_core"] is None and gpu["extra"]["engine_device"] == "gpu"
    assert dla["extra"]["plan"]["dla_core"] == 0 and dla["extra"]["engine"].endswith("model_int8_dla0.engine")
    assert dla["extra"]["dla_gpu_fallback_layers"] == ["pool"] and gpu["extra"]["dla_gpu_fallback_layers"] is None
    assert [lat["batch_size"] for lat in dla["latency"]] == [1]          # the DLA engine's one static batch
    assert dla["extra"]["plan"]["batch"] == "1:1:1" and gpu["extra"]["plan"]["batch"] == "1:1:8"
    assert report["environment"]["tensorrt"] == "10.3.0.30" and report["environment"]["dla_cores"] == 2
    assert report["environment"]["recipe"] == "trt8.5-10.11"
    assert report["recommended"] in [r["precision"] for r in report["rows"]]
    assert "GPU and DLA alike" in report["recommended_why"]
    report_mod = pytest.importorskip("edgeres.report")      # the same report as any other target
    assert (engines / "report.json").is_file() and (engines / "report.md").is_file()
    merged = report_mod.read_report(engines / "kit-report.json")
    assert {r.precision for r in merged.rows} == {"fp32", "fp16", "fp16 @ dla0", "int8", "int8 @ dla0"}
    assert ("parse_from_file", str(tmp_path / "kit-jetson" / "onnx" / "model_int8_qdq.onnx")) in calls



def test_kit_build_strong_mode_uses_fp16_onnx(tmp_path, models, fake_device):
    calls = fake_device("10.13.0.35", cc=(8, 9), dla_cores=0)
    res = _write(tmp_path, models, precisions=["fp16"], slice_size=8)
    report = build_kit(res.path, iterations=2, min_seconds=0, warmup=0, batch_sizes=[1])
    row = report["rows"][0]
    assert row["extra"]["typed_mode"] == "strong" and row["execution_precision"] == "fp16"
    tput = row["extra"]["throughput"]  # its own measurement: two contexts on two streams, both busy
    assert tput["streams"] == 2 and tput["requests"] == 2 and tput["requests_busy_max"] == 2
    assert row["throughput"] == tput["images_per_second"] and "2 streams" in row["throughput_label"]
    assert ("parse_from_file", str(res.path / "onnx" / "model_fp16.onnx")) in calls
    assert any("compute capability 8.7" in w for w in report["notes"])   # kit for Orin, built on sm 8.9


def test_kit_build_refuses_int8_on_maxwell_device(tmp_path, models, fake_device):
    fake_device("8.5.2.2", cc=(5, 3))
    res = _write(tmp_path, models, precisions=["fp16", "int8"])
    with pytest.raises(EdgeresError, match="no fast INT8 on Maxwell"):
        build_kit(res.path, precisions=["int8"])
    with pytest.raises(EdgeresError, match="kit was written for fp16, int8, not fp32"):
        build_kit(res.path, precisions=["fp32"])


def test_unpacking_a_kit_again_keeps_engines_built_in_it(tmp_path, models):
    res = _write(tmp_path, models)
    dest = tmp_path / "device"
    kit = load_kit(res.tarball, extract_to=dest)
    engine = kit.root / "engines" / "model_fp16.engine"
    engine.parent.mkdir()
    engine.write_bytes(b"built on the device")
    again = load_kit(res.tarball, extract_to=dest)
    assert again.root == kit.root and engine.read_bytes() == b"built on the device"
    (kit.root / "kit.json").write_text("{}")  # another kit under the same name
    with pytest.raises(EdgeresError, match="already exists and is not the kit"):
        load_kit(res.tarball, extract_to=dest)


def test_a_dla_row_that_fails_to_build_is_a_note_not_a_failed_kit(tmp_path, models, fake_device, monkeypatch):
    fake_device("10.3.0.30", cc=(8, 7), dla_cores=2)
    real = trt_backend.build_engine

    def dla_refuses(onnx, engine, plan, **kw):
        if plan.dla_core is not None:
            raise EdgeresError("TensorRT could not build a int8 engine (DLA: unsupported layer)")
        return real(onnx, engine, plan, **kw)

    monkeypatch.setattr(trt_backend, "build_engine", dla_refuses)
    res = _write(tmp_path, models, precisions=["int8"], slice_size=8)
    report = build_kit(res.path, iterations=2, min_seconds=0, warmup=0, batch_sizes=[1])
    assert [r["precision"] for r in report["rows"]] == ["int8"]
    assert any(n.startswith("int8 @ dla0 not built: TensorRT could not build") for n in report["notes"])


def test_kit_build_cli_can_skip_the_dla_rows(tmp_path, models, fake_device, capsys):
    fake_device("10.3.0.30", cc=(8, 7), dla_cores=2)
    res = _write(tmp_path, models, precisions=["int8"], slice_size=8)
    assert main(["kit", "build", str(res.path), "--no-dla-rows", "--iterations", "2", "--min-seconds", "0",
                 "--warmup", "0", "--batch-sizes", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["precision"] for r in report["rows"]] == ["int8"]
    assert main(["kit", "build", str(res.path), "--dla-core", "1", "--iterations", "2", "--min-seconds", "0",
                 "--warmup", "0", "--batch-sizes", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["precision"] for r in report["rows"]] == ["int8 @ dla1"]      # DLA-only: the GPU stays free


def test_device_side_kit_modules_need_neither_torch_nor_onnx(tmp_path, models):
    """`edgeres kit build` on the device: tensorrt, numpy and a CUDA binding only (torch and onnx blocked here)."""
    import subprocess

    res = _write(tmp_path, models, precisions=["fp16"], slice_size=4)

    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'onnx', 'onnxruntime', 'onnxconverter_common'):\n"
            "            raise ImportError(name + ' is blocked: this process plays a Jetson')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import edgeres.kit, edgeres.backends.tensorrt, edgeres.backends.tensorrt_device\n"
            "import edgeres.backends.tensorrt_recipes, edgeres.validate.recommend\n"
            "from edgeres.cli import main\n"
            f"assert main(['kit', 'show', {str(res.path)!r}]) == 0\n"
            f"sys.exit(main(['kit', 'build', {str(res.path)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "TensorRT is not installed" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "checked when written: 2 ONNX" in done.stdout
