"""The bad-input battery: what a careless or hostile user hands edgeres, and how it is refused.

Every case asserts the exit code, exactly one error line naming the problem (plus, for a
command-line rejection, one hint to --help), no traceback, and that nothing was written:
neither in the output folder nor anywhere else in the folder the command ran in. The
expensive inputs (a small build with its ONNX, bundle and report; a device kit) are made
once per module. Signal cases run the command in a child process and send it SIGINT,
SIGTERM, SIGHUP or SIGKILL in the middle of a stage.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from edgeres.cli import main
from edgeres.fileio import write_json_atomic
from edgeres.pipeline import BuildRequest, build
from edgeres.run import main as run_main
from edgeres.stages import LOCK, RECORDS, exclusive

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--depth", "18", "--num-classes", "10", "--input-size", "32", "--calib", "demo", "--calib-size", "16",
         "--bench-seconds", "0.05"]


# --- shared inputs, made once ------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small cpu build (fp32 and int8): its ONNX, onnxruntime artifact, bundle and report."""
    out = tmp_path_factory.mktemp("built") / "cpu"
    build(BuildRequest(target="cpu", depth=18, out_dir=out, num_classes=10, input_size=32, calib="demo",
                       calib_size=16, bench_seconds=0.05, precisions=["fp32"]))
    return out


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """A device kit (tarball and folder) for jetson, from a tiny ONNX."""
    from test_kit import _write, make_tiny_onnx

    base = tmp_path_factory.mktemp("kit")
    models = make_tiny_onnx(base / "m" / "model.onnx"), make_tiny_onnx(base / "m" / "model_int8.onnx", qdq=True)
    return _write(base, models)


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (-1, 0)
            for folder in folders for p in [folder, *folder.rglob("*")] if p.exists()}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """The folder a command runs in (its cwd); inputs a case makes go in ``sandbox / 'in'``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    return tmp_path


def refused(capsys, argv, code, *needles, watch=(), entry=main) -> str:
    """Run ``argv``; assert ``code``, one error line with every needle, no traceback, nothing written."""
    folders = [Path.cwd(), *watch]
    before = _snapshot(*folders)
    assert entry([str(a) for a in argv]) == code
    captured = capsys.readouterr()
    err = captured.err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert "Traceback" not in err and len(errors) == 1, err
    for needle in needles:
        assert needle in errors[0], (needle, err)
    if code == 2 and "argument" in errors[0]:  # argparse: the error and a hint, no usage block
        assert err.strip().splitlines()[-1].startswith("(see '") and "usage:" not in err, err
    assert _snapshot(*folders) == before, "something was written"
    return errors[0]


def _edit_json(src: Path, dst: Path, change) -> Path:
    data = json.loads(src.read_text())
    change(data)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(data))
    return dst


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- values the command line rules out: exit 2, before anything is read or written -----------

FLAG_CASES = [
    (["info", "--depth", "18", "--input-size", "100000"], "--input-size", "at most 2,048"),
    (["info", "--depth", "42"], "unsupported depth 42"),
    (["info", "--depth", "eighteen"], "expected an integer"),
    (["build", "--target", "cpu", *SMALL, "--input-size", "100000", "--out", "out"], "at most 2,048"),
    (["build", "--target", "cpu", *SMALL, "--accuracy-budget", "nan", "--out", "out"], "finite"),
    (["build", "--target", "cpu", *SMALL, "--accuracy-budget", "inf", "--out", "out"], "finite"),
    (["build", "--target", "cpu", *SMALL, "--accuracy-budget", "-1", "--out", "out"], "at least 0"),
    (["build", "--target", "cpu", *SMALL, "--bench-seconds", "0", "--out", "out"], "--bench-seconds"),
    (["build", "--target", "cpu", *SMALL, "--calib-size", "0", "--out", "out"], "--calib-size"),
    (["build", "--target", "cpu", *SMALL, "--num-classes", "10000000", "--out", "out"], "--num-classes"),
    (["build", "--target", "cpu", *SMALL, "--batch-profile", "1:8:4", "--out", "out"], "min <= opt <= max"),
    (["build", "--target", "cpu", *SMALL, "--batch-profile", "1:1:100000", "--out", "out"], "at most 4,096"),
    (["build", "--depth", "18"], "--target"),
    (["bulid", "--depth", "18"], "invalid choice: 'bulid'"),
    (["bench", "model.onnx", "--batch", "0"], "a batch size must be at least 1"),
    (["bench", "model.onnx", "--batch", "1,x"], "comma-separated integers"),
    (["bench", "model.onnx", "--seconds", "nan"], "finite"),
    (["bench", "model.onnx", "--iterations", "0"], "--iterations"),
    (["bench", "model.onnx", "--threads", "100000"], "--threads"),
    (["bench", "model.onnx", "--warmup", "-1"], "--warmup"),
    (["validate", "model.onnx", "--val", "demo", "--batch-size", "0"], "--batch-size"),
    (["quantize", "model.onnx", "--calib", "demo", "--out", "q", "--percentile", "nan"], "finite"),
    (["quantize", "model.onnx", "--calib", "demo", "--out", "q", "--calib-size", "-5"], "--calib-size"),
    (["export", "--depth", "18", "--batch", "lots", "--out", "e"], "batch must be 'dynamic'"),
    (["export", "--depth", "18", "--num-classes", "ten", "--out", "e"], "expected an integer"),
    (["kit", "build", "kit", "--batch-sizes", "0"], "a batch size"),
    (["kit", "build", "kit", "--iterations", "1e9"], "expected an integer"),
]


def _case_id(argv: list[str]) -> str:
    small = argv[3:3 + len(SMALL)] == SMALL
    return " ".join(["build ...", *argv[3 + len(SMALL):]] if small else argv)


@pytest.mark.parametrize("argv,needle", [pytest.param(c[0], c[1], id=_case_id(c[0])) for c in FLAG_CASES])
def test_a_value_the_command_line_rules_out_exits_2(sandbox, capsys, argv, needle):
    refused(capsys, argv, 2, needle)
    assert not (sandbox / "out").exists()


def test_run_rejects_topk_0_like_every_command(sandbox, capsys):
    refused(capsys, ["b.tar.gz", "x.jpg", "--topk", "0"], 2, "--topk", entry=run_main)


# --- files of the wrong shape: one line naming the file and the key ---------------------------

def test_model_json_with_a_string_class_count(sandbox, capsys, built):
    weights = sandbox / "in" / "w"
    weights.mkdir()
    torch = pytest.importorskip("torch")
    from edgeres.models import ResNet

    torch.save(ResNet(18, num_classes=10).state_dict(), weights / "model.pth")
    (weights / "model.json").write_text(json.dumps({"depth": 18, "num_classes": "ten"}))
    refused(capsys, ["build", "--target", "cpu", "--depth", "18", "--weights", weights, "--out", "out"], 1,
            "model.json", "num_classes", "must be an integer")


@pytest.mark.parametrize("change,needle", [
    (lambda d: d.update(rows="..."), "key 'rows' must be a list"),
    (lambda d: d["rows"][0].update(p50_ms="fast"), "rows[0].p50_ms"),
    (lambda d: d["rows"][0].update(top1=math.nan), "finite"),
    (lambda d: d.update(schema_version="1"), "key 'schema_version' must be an integer"),
])
def test_report_json_of_the_wrong_shape(sandbox, capsys, built, change, needle):
    bad = _edit_json(built / "report.json", sandbox / "in" / "r" / "report.json", change)
    refused(capsys, ["report", bad.parent, built, "--out", "merged"], 1, needle, watch=[built])


def test_kit_report_json_of_the_wrong_shape(sandbox, capsys):
    bad = sandbox / "in" / "kit-report.json"
    bad.write_text(json.dumps({"target": "jetson-orin", "rows": "...", "notes": []}))
    refused(capsys, ["report", bad], 1, "kit report", "kit-report.json", "key 'rows' must be a list")


@pytest.mark.parametrize("content,needle", [
    ("[1, 2]", "not an object"),
    ('{"backend": "onnxruntime", "files": "model.bin"}', "key 'files' must be a list"),
    ('{"backend": "onnxruntime", "sha256": 5}', "key 'sha256' must be a string"),
    ("{not json", "not valid JSON"),
])
def test_artifact_sidecar_of_the_wrong_shape(sandbox, capsys, built, content, needle):
    art = _copy(built / "cpu" / "fp32", sandbox / "in" / "a")
    sidecar = next(art.glob("*.onnx.json"))
    sidecar.write_text(content)
    refused(capsys, ["bench", sidecar.with_suffix(""), "--iterations", "1"], 1, sidecar.name, needle)


def test_bundle_manifest_of_the_wrong_shape_even_when_resealed(sandbox, capsys, built):
    from edgeres.bundle.manifest import seal

    bundle = _copy(built / "bundle", sandbox / "in" / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["precision"] = 8
    write_json_atomic(bundle / "manifest.json", seal(manifest))
    refused(capsys, [bundle, ROOT / "tests" / "data" / "none.png"], 1, "manifest.json", "key 'precision'",
            entry=run_main)


def test_kit_json_of_the_wrong_shape(sandbox, capsys, kit):
    folder = _copy(kit.path, sandbox / "in" / "kit")
    _edit_json(folder / "kit.json", folder / "kit.json", lambda d: d["validation"].update(n="many"))
    refused(capsys, ["kit", "show", folder], 1, "kit.json", "validation.n", "must be an integer")


@pytest.mark.parametrize("line,needle", [
    ("accuracy_budget = nan", "key 'accuracy_budget' must be a finite number"),
    ("accuracy_budget = -1.0", "accuracy_budget"),
    ("backnd = 'onnxruntime'", "did you mean 'backend'"),
    ("batch_profile = 1.5", "key 'batch_profile' must be a string or an integer"),
])
def test_target_toml_of_the_wrong_shape(sandbox, capsys, line, needle):
    text = (ROOT / "targets" / "cpu.toml").read_text()
    key = line.split("=")[0].strip()
    kept = [ln for ln in text.splitlines() if not ln.startswith(key if key != "backnd" else "backend ")]
    folder = sandbox / "in" / "targets"
    folder.mkdir()
    (folder / "cpu.toml").write_text("\n".join([line, *kept]) + "\n")
    refused(capsys, ["targets", "show", "cpu", "--targets-dir", folder], 1, "cpu.toml", needle)


@pytest.mark.parametrize("text,needle", [
    ('source = "demo:digits-train"\nsize = "ten"\n', "key 'size' must be an integer"),
    ('source = "demo:digits-train"\nsise = 10\n', "did you mean 'size'"),
    ('size = 10\n', "required key 'source' is missing"),
])
def test_calibration_toml_of_the_wrong_shape(sandbox, capsys, built, text, needle):
    spec = sandbox / "in" / "mine.toml"
    spec.write_text(text)
    refused(capsys, ["quantize", built / "onnx" / "model.onnx", "--calib", spec, "--out", "q"], 1, "mine.toml", needle,
            watch=[built])


@pytest.mark.parametrize("suffix,poison", [(".npy", np.nan), (".npz", np.inf)])
def test_calibration_tensors_with_nan_or_inf_are_refused_with_the_file_and_count(sandbox, capsys, suffix, poison):
    x = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    x[1, 0, :2, :3] = poison
    path = sandbox / "in" / f"calib{suffix}"
    np.save(path, x) if suffix == ".npy" else np.savez(path, x=x)
    refused(capsys, ["build", "--target", "cpu", *SMALL, "--calib", path, "--out", "out"], 1,
            path.name, "6 of 24,576 values", "NaN or infinite")


def test_an_ir_that_is_not_an_ir(sandbox, capsys, built):
    pytest.importorskip("openvino")
    art = sandbox / "in" / "ir"
    art.mkdir()
    (art / "model.xml").write_text("<html>not an IR</html>")
    (art / "model.bin").write_bytes(b"\0")
    (art / "model.xml.json").write_text(json.dumps({"backend": "openvino", "precision": "fp32", "files": ["model.bin"],
                                                    "runtime": {}, "inference_precision_hint": "f32"}))
    refused(capsys, ["bench", art / "model.xml", "--iterations", "1"], 1, "model.xml", "not an OpenVINO IR")


def _onnx(path: Path, op: str, named: bool) -> Path:
    from onnx import TensorProto, helper, numpy_helper, save

    nodes, inits = [], []
    if op == "Conv":
        inits.append(numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "W"))
        nodes.append(helper.make_node("Conv", ["input", "W"], ["logits"], name="conv" if named else ""))
    else:
        nodes.append(helper.make_node("Relu", ["input"], ["logits"], name="relu"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], inits)
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("op,named,needle", [("Relu", True, "has no Conv or Gemm layer"),
                                             ("Conv", False, "1 of its 1 Conv/Gemm nodes have no name")])
def test_an_onnx_edgeres_cannot_quantize(sandbox, capsys, op, named, needle):
    model = _onnx(sandbox / "in" / "m.onnx", op, named)
    refused(capsys, ["quantize", model, "--calib", "demo", "--calib-size", "8", "--out", "q"], 1, "m.onnx", needle)


def test_a_corrupt_onnx(sandbox, capsys, built):
    art = _copy(built / "onnx", sandbox / "in" / "onnx")
    (art / "model.onnx").write_bytes(b"not a protobuf")
    refused(capsys, ["quantize", art / "model.onnx", "--calib", "demo", "--calib-size", "8", "--out", "q"], 1,
            "model.onnx")


# --- archives ----------------------------------------------------------------------------------

def _with_dangling_hard_link(folder: Path, tar_path: Path) -> Path:
    """``folder`` packed as a tarball, plus a hard link whose target is not in the archive."""
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
        link = tarfile.TarInfo(f"{folder.name}/extra.bin")
        link.type, link.linkname = tarfile.LNKTYPE, f"{folder.name}/not-in-the-archive.bin"
        tar.addfile(link)
    return tar_path


@pytest.mark.parametrize("command", ["run", "bench"])
def test_a_bundle_tarball_with_a_hard_link_to_a_non_member(sandbox, capsys, built, command):
    tar = _with_dangling_hard_link(built / "bundle", sandbox / "in" / "bundle.tar.gz")
    argv, entry = ([tar, "x.png"], run_main) if command == "run" else (["bench", tar, "--iterations", "1"], main)
    refused(capsys, argv, 1, "refusing to extract", "extra.bin", "hard link", entry=entry)


def test_a_kit_tarball_with_a_hard_link_to_a_non_member(sandbox, capsys, kit):
    tar = _with_dangling_hard_link(kit.path, sandbox / "in" / "kit.tar.gz")
    refused(capsys, ["kit", "show", tar], 1, "refusing to extract", "hard link")


def test_a_truncated_bundle_tarball(sandbox, capsys, built):
    tar = sandbox / "in" / "bundle.tar.gz"
    data = (built / "bundle.tar.gz").read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    refused(capsys, [tar, "x.png"], 1, "bundle.tar.gz", entry=run_main)


# --- the filesystem says no: the path and what to do ------------------------------------------

def test_an_output_folder_that_is_a_file(sandbox, capsys):
    (sandbox / "out").write_text("mine")
    refused(capsys, ["build", "--target", "cpu", *SMALL, "--out", "out"], 1, "out", "is a file, not a folder")


def test_a_quantize_into_a_path_that_is_a_file_is_refused_before_calibrating(sandbox, capsys, built):
    (sandbox / "in" / "q").write_text("mine")
    refused(capsys, ["quantize", built / "onnx" / "model.onnx", "--calib", "demo", "--out", sandbox / "in" / "q"], 1,
            "is a file, not a folder", watch=[built])


def test_an_export_into_a_path_under_a_file(sandbox, capsys):
    (sandbox / "in" / "f").write_text("mine")
    refused(capsys, ["export", "--depth", "18", "--input-size", "32", "--out", sandbox / "in" / "f" / "m.onnx"], 1,
            "in/f", "a file")


def test_package_over_a_folder_of_your_own_files(sandbox, capsys, built):
    (sandbox / "in" / "mine.txt").write_text("mine")
    refused(capsys, ["package", built / "cpu" / "fp32" / "onnxruntime_fp32.onnx", "--out", sandbox / "in"], 1,
            "is not an edgeres bundle", watch=[built])


def test_a_file_size_limit_names_the_file(tmp_path):
    """RLIMIT_FSIZE (ulimit -f): the write fails with EFBIG; the message names the file and the limit."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    proc = subprocess.run([sys.executable, "-m", "edgeres.cli", "export", "--depth", "18", "--input-size", "32",
                           "--out", str(tmp_path / "e")], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          preexec_fn=limit, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "model.onnx" in proc.stderr and "ulimit -f" in proc.stderr
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "a partial file was left"


def test_a_refused_second_build_keeps_the_holders_lock_record(sandbox, capsys):
    out = sandbox / "busy"
    with exclusive(out):
        record = (out / LOCK).read_text()
        assert record == str(os.getpid())
        refused(capsys, ["build", "--target", "cpu", *SMALL, "--out", out], 1, "another edgeres build",
                f"pid {os.getpid()}")
        assert (out / LOCK).read_text() == record


# --- signals: SIGINT, SIGTERM and SIGHUP clean up like Ctrl-C; SIGKILL leaves temps the next run sweeps

def _start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgeres.cli", *map(str, argv)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def _signal_mid_stage(proc: subprocess.Popen, out: Path, signum: int, after=lambda: True) -> None:
    """Once ``after()`` holds, wait (a while) for a temporary folder being written in ``out``, then signal."""
    deadline = time.monotonic() + 300
    while proc.poll() is None and not after() and time.monotonic() < deadline:
        time.sleep(0.01)
    deadline = time.monotonic() + 60
    while proc.poll() is None and not _temps(out) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "finished before the signal: " + proc.stderr.read()
    proc.send_signal(signum)


@pytest.mark.parametrize("signum,code,word", [(signal.SIGTERM, 143, "stopped by SIGTERM"),
                                              (signal.SIGHUP, 129, "stopped by SIGHUP"),
                                              (signal.SIGINT, 130, "interrupted")])
def test_a_signalled_quantize_exits_cleanly_and_leaves_no_temp(tmp_path, built, signum, code, word):
    out = tmp_path / "q"
    proc = _start(["quantize", built / "onnx" / "model.onnx", "--calib", "demo", "--calib-size", "64", "--out", out,
                   "--cache-dir", tmp_path / "cache"])
    _signal_mid_stage(proc, out, signum)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == code, err
    assert word in err and "no partial artifact was kept" in err and "Traceback" not in err, err
    assert not _temps(out) and not list(out.rglob("*.onnx"))


def test_a_build_stopped_by_sigterm_cleans_up_and_releases_the_lock(tmp_path):
    out = tmp_path / "b"
    proc = _start(["build", "--target", "cpu", *SMALL, "--precision", "int8", "--out", out])
    _signal_mid_stage(proc, out, signal.SIGTERM, after=lambda: (out / RECORDS / "export onnx.json").exists())
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143 and "stopped by SIGTERM" in err and "Traceback" not in err, err
    assert not _temps(out)
    with exclusive(out) as swept:  # released, and nothing left behind to sweep
        assert swept == []


def test_a_sigkilled_build_leaves_temps_the_next_run_sweeps(tmp_path):
    out = tmp_path / "k"
    argv = ["build", "--target", "cpu", *SMALL, "--precision", "int8", "--out", out]
    proc = _start(argv)
    _signal_mid_stage(proc, out, signal.SIGKILL, after=lambda: (out / RECORDS / "export onnx.json").exists())
    proc.communicate(timeout=60)
    # what a kill mid-write leaves (planted too, so the sweep is tested whatever the timing)
    dead = out / "onnx" / ".model.int8.onnxruntime.onnx.k1ll3d00.tmp"
    dead.mkdir(parents=True, exist_ok=True)
    (dead / "model.int8.onnxruntime.onnx").write_bytes(b"half")
    again = _start(argv)
    err = again.communicate(timeout=600)[1]
    assert again.returncode == 0, err
    assert "temporary folder(s) left by an interrupted build" in err and "reused" in err, err
    assert not _temps(out)
