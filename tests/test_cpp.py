"""examples/cpp: the C++ consumer of a bundle, built with CMake against the openvino wheel's runtime,
checked against `python -m edgeres.run` on the same bundle and real images (scikit-image's
photographs, the demo digits). Skips, saying why, where a compiler, CMake or a header is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeres.bundle import load_bundle, make_bundle
from edgeres.data import demo_digits_dir
from edgeres.data.demo import skimage_data_dir
from edgeres.data.demo_model import ensure_demo_model
from edgeres.pipeline import BuildRequest, build
from edgeres.run import main as python_run

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "examples" / "cpp"
BUILD_DIR = ROOT / "build" / "cpp-test"  # kept between runs: a rebuild only compiles what changed


def _missing_toolchain() -> str | None:
    for tool in ("cmake", "c++", "make"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    for header, package in (("nlohmann/json.hpp", "nlohmann-json3-dev"), ("jpeglib.h", "libjpeg-dev"),
                            ("png.h", "libpng-dev"), ("openssl/evp.h", "libssl-dev")):
        if not any((Path(d) / header).is_file() for d in ("/usr/include", "/usr/local/include")):
            return f"{header} is missing (install {package})"
    return None


def openvino_cmake_dir() -> Path | None:
    try:
        import openvino
    except ImportError:
        return None
    folder = Path(openvino.__file__).parent / "cmake"
    return folder if (folder / "OpenVINOConfig.cmake").is_file() else None


@pytest.fixture(scope="module")
def edgeres_run() -> Path:
    """The built edgeres_run program (CMake configure + build, incremental)."""
    reason = _missing_toolchain()
    if reason:
        pytest.skip(f"C++ example not built: {reason}")
    ov_dir = openvino_cmake_dir()
    if ov_dir is None:
        pytest.skip("C++ example not built: the openvino package with its CMake files is not installed")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    for cmd in (["cmake", "-S", str(SOURCE), "-B", str(BUILD_DIR), f"-DOpenVINO_DIR={ov_dir}"],
                ["cmake", "--build", str(BUILD_DIR), "-j2"]):
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return BUILD_DIR / "edgeres_run"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    """An intel-cpu INT8 bundle of the trained demo ResNet-18 (32x32 digits, 10 classes)."""
    out = tmp_path_factory.mktemp("cpp") / "intel-cpu"
    result = build(BuildRequest(target="intel-cpu", depth=18, out_dir=out, weights=ensure_demo_model(progress=False),
                                precisions=["int8"], calib="demo", calib_size=32, val="demo-val", val_size=48,
                                bench_seconds=0.1))
    assert result.bundle is not None
    return Path(result.bundle)


def real_images() -> list[str]:
    """Photographs that need resizing (JPEG, RGB and RGBA PNG, grey) and digits at the model's size."""
    photos = skimage_data_dir()
    digits = sorted(demo_digits_dir("val").glob("*/*.png"))[::40][:6]
    return [str(photos / n) for n in ("rocket.jpg", "chelsea.png", "logo.png", "camera.png")] + [str(p) for p in digits]


def run_cpp(program: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(program), *args], check=False, capture_output=True, text=True, timeout=300)


def cpp_json(program: Path, bundle: Path, images: list[str], *extra: str) -> dict:
    done = run_cpp(program, str(bundle), *images, "--json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cpp_topk_matches_python_runtime_on_real_images(edgeres_run, bundle_dir, capsys):
    images = real_images()
    assert python_run([str(bundle_dir), *images, "--topk", "5", "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)["results"]
    got = cpp_json(edgeres_run, bundle_dir, images, "--topk", "5")["results"]
    assert [r["image"] for r in got] == images
    for mine, theirs in zip(got, expected):
        assert [p["label"] for p in mine["top"]] == [p["label"] for p in theirs["top"]], mine["image"]
        for a, b in zip(mine["top"], theirs["top"]):
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-5), mine["image"]

    # the human-readable output is the Python runtime's, character for character
    assert python_run([str(bundle_dir), *images[:3], "--topk", "3"]) == 0
    text = capsys.readouterr().out
    done = run_cpp(edgeres_run, str(bundle_dir), *images[:3], "--topk", "3")
    assert done.returncode == 0 and done.stdout == text


def test_cpp_applies_exif_orientation_as_python_does(edgeres_run, bundle_dir, tmp_path, capsys):
    from PIL import Image

    photo = Image.open(skimage_data_dir() / "chelsea.png").convert("RGB").crop((0, 0, 451, 300))
    images = []
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        for ext in ("jpg", "png"):
            images.append(str(tmp_path / f"o{orientation}.{ext}"))
            photo.save(images[-1], exif=exif.tobytes())
    assert python_run([str(bundle_dir), *images, "--topk", "10", "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)["results"]
    got = cpp_json(edgeres_run, bundle_dir, images, "--topk", "10")["results"]
    for mine, theirs in zip(got, expected):
        assert [p["index"] for p in mine["top"]] == [p["index"] for p in theirs["top"]], mine["image"]
        assert [p["probability"] for p in mine["top"]] == pytest.approx([p["probability"] for p in theirs["top"]],
                                                                       abs=1e-5), mine["image"]


def test_cpp_refuses_a_tampered_bundle(edgeres_run, bundle_dir, tmp_path):
    image = real_images()[0]
    weights = tmp_path / "weights" / bundle_dir.name
    shutil.copytree(bundle_dir, weights)
    with open(weights / "model.bin", "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))
    done = run_cpp(edgeres_run, str(weights), image)
    assert done.returncode == 1 and done.stdout == ""
    assert "file 'model.bin' was modified after packaging" in done.stderr and "Traceback" not in done.stderr

    labels = tmp_path / "labels" / bundle_dir.name
    shutil.copytree(bundle_dir, labels)
    manifest = json.loads((labels / "manifest.json").read_text())
    manifest["labels"][0] = "cat"
    (labels / "manifest.json").write_text(json.dumps(manifest, indent=2))
    done = run_cpp(edgeres_run, str(labels), image)
    assert done.returncode == 1 and "manifest.json was modified after packaging" in done.stderr

    missing = run_cpp(edgeres_run, str(tmp_path / "nowhere"), image)
    assert missing.returncode == 1 and missing.stderr.strip() == f"edgeres_run: error: bundle {tmp_path / 'nowhere'} does not exist"
    bad_image = run_cpp(edgeres_run, str(bundle_dir), str(tmp_path / "no.jpg"))
    assert bad_image.returncode == 1 and "no.jpg does not exist" in bad_image.stderr
    usage = run_cpp(edgeres_run, str(bundle_dir), image, "--topk", "0")
    assert usage.returncode == 2 and "--topk needs a positive integer" in usage.stderr


def test_cpp_verifies_the_seal_of_any_manifest_python_writes(edgeres_run, bundle_dir, tmp_path):
    """The seal is a hash of Python's canonical JSON; the C++ side re-creates that text, floats and
    non-ASCII labels included."""
    import random

    rng = random.Random(0)
    metrics = {"floats": [rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30) for _ in range(2000)],
               "edge": [0.1, 1e-05, 1e16, 1e15, 123456789.125, -0.0, 5e-324, 256.0]}
    labels = ["chat-é", "日本", "emoji 😀", 'quote " and \\', "tab\there", "5", "6", "7", "8", "9"]
    with load_bundle(bundle_dir) as b:
        art, m = b.artifact(), b.manifest
        from edgeres.data.preprocess import PreprocessSpec

        out = make_bundle(art, tmp_path / "odd", target="intel-cpu", model_info=m["model"],
                          preprocess=PreprocessSpec.from_dict(m["input"]["preprocess"]), labels=labels, metrics=metrics)
    got = cpp_json(edgeres_run, out, real_images()[:1], "--topk", "10")
    assert sorted(p["label"] for p in got["results"][0]["top"]) == sorted(labels)


def test_cpp_frame_input_agrees_with_host_path(edgeres_run, bundle_dir):
    images = real_images()
    host = cpp_json(edgeres_run, bundle_dir, images, "--topk", "10")["results"]
    for order in ("RGB", "BGR"):
        fused = cpp_json(edgeres_run, bundle_dir, images, "--topk", "10", "--frame", order)
        assert f"uint8 {order} frames" in fused["engine"]
        for h, f in zip(host, fused["results"]):
            assert f["top"][0]["index"] == h["top"][0]["index"], (order, h["image"])
            hp = {p["index"]: p["probability"] for p in h["top"]}
            assert all(abs(p["probability"] - hp[p["index"]]) < 1e-4 for p in f["top"]), (order, h["image"])


def test_cpp_bench_prints_engine_and_both_end_to_end_percentiles(edgeres_run, bundle_dir):
    done = run_cpp(edgeres_run, str(bundle_dir), real_images()[0], "--bench", "5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("timed"))
    assert header.split()[1:] == ["runs", "mean", "ms", "p50", "p90", "p99", "min", "max"]
    assert any(line.startswith("engine only") and line.split()[6] == "5" for line in lines)
    assert any(line.startswith("end to end, host") for line in lines)
    assert any(line.startswith("end to end, fused") for line in lines)
    assert any(line.startswith("engine: openvino") for line in lines)
    assert any(line.startswith("fused: openvino") and "uint8 RGB frames" in line for line in lines)
