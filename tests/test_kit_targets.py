"""A kit is right for its target's device: options refused when the target loads, the typed mode the
device's planner uses in every rendered line, only the recipes its TensorRT can be, kit build options
checked against kit.json before TensorRT is looked for, and the kit README's details."""

from __future__ import annotations

from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
from test_kit import _slice, _write, models  # noqa: F401  (models is a fixture)

from edgeres.backends.tensorrt_recipes import trtexec_accepts
from edgeres.backends.tensorrt_render import check_rendered, render_recipes
from edgeres.cli import main
from edgeres.data import PreprocessSpec
from edgeres.errors import EdgeresError
from edgeres.kit import write_kit
from edgeres.kit.readme import readme_lines
from edgeres.targets import BUILTIN_DIR, get_target

ONNX = ["fp32", "fp32_opset13", "fp16", "int8", "int8_fp16"]


def _copy_target(folder: Path, builtin: str, name: str, **replace: str) -> Path:
    """A user's copy of a built-in target file, renamed, with some option lines replaced."""
    lines = []
    for line in (BUILTIN_DIR / f"{builtin}.toml").read_text().splitlines():
        key = line.split("=")[0].strip()
        if key == "name":
            line = f'name = "{name}"'
        elif key == "aliases":
            line = "aliases = []"
        elif key in replace:
            line = f"{key} = {replace[key]}"
        lines.append(line)
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("builtin,option,value,message", [
    ("jetson-orin", "dla_core", "5", "option dla_core = 5, but my-dev has 2 DLA core(s) (0 to 1)"),
    ("jetson-orin-nano", "dla_core", "0", "option dla_core = 0, but my-dev has no DLA cores"),
    ("jetson-orin", "typed_mode", '"strongly"', "typed_mode must be one of auto, strong, weak, got 'strongly'"),
    ("jetson-nano", "typed_mode", '"strong"', "my-dev's TensorRT (up to 8.2) has no strongly typed networks"),
])
def test_a_target_its_device_cannot_honour_is_refused_when_it_loads(tmp_path, capsys, builtin, option, value,
                                                                     message):
    path = _copy_target(tmp_path / "targets", builtin, "my-dev", **{option: value})
    assert main(["targets", "show", "my-dev", "--targets-dir", str(path.parent)]) == 1
    err = capsys.readouterr().err
    assert message in err and str(path) in err and len(err.strip().splitlines()) == 1
    out = tmp_path / "out"
    assert main(["build", "--target", str(path), "--depth", "18", "--out", str(out)]) == 1
    assert message in capsys.readouterr().err and not out.exists()   # before export and calibration


def test_typed_mode_weak_is_what_every_rendered_line_builds():
    t = get_target("jetson")
    recipes = {r["name"]: r for r in render_recipes(["fp16", "int8"], {**t.options, "typed_mode": "weak"},
                                                    t.batch_profile, ["N", 3, 224, 224], "input", ONNX, 2)}
    check_rendered(list(recipes.values()))
    ten = {e["variant"]: e for e in recipes["trt10.12-10.x"]["engines"]}
    assert recipes["trt10.12-10.x"]["typed_mode"] == "weak"
    assert "--stronglyTyped" not in ten["int8"]["build"] and "--int8 --fp16" in ten["int8"]["build"]
    assert ten["int8"]["onnx"] == "onnx/model_int8_qdq.onnx"
    eleven = recipes["trt11"]                      # the planner refuses weak on 11: no lines, and the note says so
    assert eleven["engines"] == [] and "only strongly typed networks" in eleven["notes"][0]


def test_typed_mode_strong_renders_strong_lines_from_tensorrt_9_1():
    t = get_target("jetson")
    recipes = {r["name"]: r for r in render_recipes(["fp16", "int8"], {**t.options, "typed_mode": "strong"},
                                                    t.batch_profile, ["N", 3, 224, 224], "input", ONNX, 2)}
    check_rendered(list(recipes.values()))        # --stronglyTyped checked against 9.1 and 10.11
    old = recipes["trt8.5-10.11"]
    assert old["first"] == "9.1" and old["label"].startswith("TensorRT 9.1 - 10.11")
    assert "8.5 - 9.0" in old["notes"][0] and "refuses" in old["notes"][0]
    int8 = {e["variant"]: e for e in old["engines"]}["int8"]
    assert "--stronglyTyped" in int8["build"] and "--int8" not in int8["build"]
    assert int8["onnx"] == "onnx/model_int8_qdq_fp16.onnx"


def test_a_dla_core_only_the_device_can_check_is_a_note_in_the_kit():
    t = get_target("nvidia-gpu")                   # no declared DLA count
    recipes = render_recipes(["fp16"], {**t.options, "dla_core": 1}, t.batch_profile, ["N", 3, 224, 224], "input",
                             ONNX, t.device.get("dla_cores"))
    first = recipes[0]
    assert [e["variant"] for e in first["engines"]] == ["fp16 @ dla1"]
    assert any("does not declare how many DLA cores" in n for n in first["notes"])
    assert any(line.startswith("Note: dla_core = 1") for line in readme_lines(recipes, {}))


def test_tensorrt_8_2_trtexec_takes_workspace_not_mempoolsize():
    assert "--workspace" in trtexec_accepts((8, 2)) and "--memPoolSize" not in trtexec_accepts((8, 2))
    assert "--memPoolSize" in trtexec_accepts((8, 4))
    assert not {"--stronglyTyped", "--builderOptimizationLevel", "--infStreams"} & trtexec_accepts((8, 2))


def test_nano_kit_is_for_the_tensorrt_8_2_it_has(tmp_path, models):  # noqa: F811
    res = _write(tmp_path, models, target="jetson-nano", precisions=["fp32", "fp16"])
    m = res.manifest
    assert [r["name"] for r in m["recipes"]] == ["trt8.2-8.4"] and m["recipes"][0]["dla"] == ""
    for e in m["recipes"][0]["engines"]:
        assert e["onnx"] == "onnx/model_fp32_opset13.onnx"
        assert "--workspace=512" in e["build"] and "--memPoolSize" not in e["build"]
        assert "--builderOptimizationLevel" not in e["build"] and "--stronglyTyped" not in e["build"]
    assert "--fp16" in m["recipes"][0]["engines"][1]["build"]
    op13 = onnx.load(str(res.path / "onnx/model_fp32_opset13.onnx"))
    assert [o.version for o in op13.opset_import if o.domain in ("", "ai.onnx")] == [13]
    assert m["proof"]["onnx"]["onnx/model_fp32_opset13.onnx"]["ok"]            # proven on the slice
    assert not (res.path / "onnx/model_fp16.onnx").exists()                     # no recipe builds from it
    readme = (res.path / "README.md").read_text()
    assert "DLA rows" not in readme and "useDLACore" not in readme and "dla0" not in readme
    assert "TensorRT 10" not in readme and "TensorRT 11" not in readme and "8.5 - 10.11" not in readme
    assert "older than the 8.5 `edgeres kit build` needs" in readme


def test_kit_readme_names_the_model_and_each_recipes_frame_onnx(tmp_path, models):  # noqa: F811
    fp32, qdq = models
    x, y, ref = _slice()
    res = write_kit(tmp_path / "kit", target="jetson", fp32_onnx=fp32, qdq_onnx=qdq, precisions=["fp16", "int8"],
                    inputs=x, labels=y, reference_logits=ref, preprocess=PreprocessSpec.for_size(16),
                    model={"depth": 50, "num_classes": 4})
    readme = (res.path / "README.md").read_text()
    assert readme.startswith("# edgeres device kit: ResNet-50 for jetson-orin")
    frames = readme[readme.index("## Camera frames"):readme.index("## Files")]
    assert "frame_input onnx/model_int8_qdq.onnx onnx/model_int8_qdq.frame.onnx" in frames
    assert "frame_input onnx/model_int8_qdq_fp16.onnx onnx/model_int8_qdq_fp16.frame.onnx" in frames
    assert "TensorRT 10.12 - 10.x (int8), TensorRT 11.x (int8):" in frames
    assert "--minShapes=frame:1x16x16x3 --optShapes=frame:1x16x16x3 --maxShapes=frame:8x16x16x3" in frames
    assert "--shapes=frame" not in frames


@pytest.mark.parametrize("target,argv,message", [
    ("jetson-nano", ["--precision", "int8"], "does not support int8: no fast INT8 on Maxwell"),
    ("jetson-nano", ["--precision", "bogus"], "does not support bogus"),
    ("jetson-nano", ["--batch", "1,99"], "--batch 99: the kit's engines take batch 1 to 4"),
    ("jetson", ["--dla-core", "7"], "--dla-core: dla_core = 7, but jetson-orin has 2 DLA core(s)"),
])
def test_kit_build_checks_its_options_against_the_kit_before_looking_for_tensorrt(tmp_path, models, capsys,  # noqa: F811
                                                                                   target, argv, message):
    precisions = ["fp32", "fp16"] if target == "jetson-nano" else ["fp16"]
    res = _write(tmp_path, models, target=target, precisions=precisions)
    assert main(["kit", "build", str(res.path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "TensorRT is not installed" not in err and len(err.strip().splitlines()) == 1


def test_kit_build_without_tensorrt_says_so_once_the_options_pass(tmp_path, models, capsys):  # noqa: F811
    from edgeres.backends.tensorrt_cuda import _load_tensorrt

    if _load_tensorrt()[0] is not None:
        pytest.skip("TensorRT is installed here")
    res = _write(tmp_path, models, target="jetson", precisions=["fp16"])
    assert main(["kit", "build", str(res.path), "--batch", "1,8"]) == 1
    err = capsys.readouterr().err
    assert "TensorRT is not installed / no NVIDIA GPU" in err and len(err.strip().splitlines()) == 1
    assert main(["kit", "build", str(tmp_path / "no-kit")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_kit_show_says_a_file_that_is_not_a_kit_is_not_a_kit(tmp_path, capsys):
    report = tmp_path / "report.md"
    report.write_text("# a report\n")
    assert main(["kit", "show", str(report)]) == 1
    err = capsys.readouterr().err
    assert "is a file, not an edgeres kit" in err and "does not exist" not in err


def test_a_kit_for_a_refused_typed_mode_is_not_written(tmp_path, models):  # noqa: F811
    with pytest.raises(EdgeresError, match="no strongly typed networks"):
        _write(tmp_path, models, target="jetson-nano", precisions=["fp16"], options={"typed_mode": "strong"})
