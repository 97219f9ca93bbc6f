"""Per-version recipes and their trtexec lines, GPU/DLA engine rows, and TensorRT 11 on the fake."""

from __future__ import annotations

import sys

import pytest
from trt_fakes import FakeCuda, make_tensorrt

from edgeres.artifact import BatchProfile
from edgeres.backends import tensorrt as trt_backend
from edgeres.backends import tensorrt_cuda as trt_cuda
from edgeres.backends.tensorrt_plan import plan_engine
from edgeres.backends.tensorrt_recipes import (
    RECIPES,
    EngineVariant,
    dla_supported,
    engine_variants,
    recipe_for,
    trtexec_accepts,
    unknown_flags,
)
from edgeres.backends.tensorrt_render import check_rendered, edge_versions, render_recipes
from edgeres.errors import EdgeresError
from edgeres.targets import get_target

ALL_ONNX = ["fp32", "fp32_opset13", "fp16", "int8", "int8_fp16"]
PRECISION_FLAGS = ("--int8", "--fp16", "--best", "--calib", "--bf16")


def _render(target="jetson", dla_cores=2, precisions=("fp32", "fp16", "int8"), **options):
    t = get_target(target)
    return render_recipes(list(precisions), {**t.options, **options}, t.batch_profile, ["N", 3, 224, 224], "input",
                          ALL_ONNX, dla_cores, t.device.get("tensorrt_max"))


@pytest.mark.parametrize("version,name", [((8, 5, 2), "trt8.5-10.11"), ((8, 6, 2), "trt8.5-10.11"),
                                          ((10, 3, 0), "trt8.5-10.11"), ((10, 11), "trt8.5-10.11"),
                                          ((10, 12), "trt10.12-10.x"), ((10, 13, 0, 35), "trt10.12-10.x"),
                                          ((11, 0), "trt11"), ((11, 4, 1), "trt11"), ((8, 2, 1), "trt8.2-8.4")])
def test_recipe_chosen_by_the_tensorrt_version_found(version, name):
    assert recipe_for(version).name == name


@pytest.mark.parametrize("version,dla", [((8, 5, 2), True), ((10, 3), True), ((10, 7), True), ((10, 8), False),
                                         ((10, 13), False), ((11, 4, 0), False), ((11, 4, 1), True)])
def test_which_tensorrt_versions_drive_the_dla(version, dla):
    assert dla_supported(version) is dla


def test_no_recipe_before_tensorrt_8_2():
    with pytest.raises(EdgeresError, match="older than any recipe"):
        recipe_for((8, 0, 1))


def test_each_recipes_trtexec_lines_use_only_flags_its_versions_accept():
    recipes = _render()
    check_rendered(recipes)                       # the writer's own check passes
    by_name = {r.name: r for r in RECIPES}
    lines_checked = 0
    for r in recipes:
        for version in edge_versions(by_name[r["name"]]):
            for e in r["engines"]:
                for line in (e["build"], e["bench"], e["throughput"]):
                    assert unknown_flags(line, version) == [], (version, line)
                    lines_checked += 1
    assert lines_checked == (5 + 3 + 5) * 2 * 3     # engines per recipe x 2 edge versions x (build, bench, throughput)
    engines = {r["name"]: [e["variant"] for e in r["engines"]] for r in recipes}
    assert engines["trt10.12-10.x"] == ["fp32", "fp16", "int8"]      # 10.8 - 11.4.0 drive no DLA on Jetson
    assert engines["trt11"] == engines["trt8.5-10.11"] == ["fp32", "fp16", "fp16 @ dla0", "int8", "int8 @ dla0"]
    eleven = next(r for r in recipes if r["name"] == "trt11")
    for e in eleven["engines"]:
        words = [w.split("=")[0] for w in e["build"].split()]
        assert not set(words) & set(PRECISION_FLAGS), e["build"]
        assert "--stronglyTyped" not in words      # always on in 11, no longer needed
    weak = next(r for r in recipes if r["name"] == "trt8.5-10.11")
    assert all("--builderOptimizationLevel" not in e["build"] for e in weak["engines"])   # 8.5 predates it
    int8 = {e["variant"]: e for e in weak["engines"]}["int8"]
    assert "--int8 --fp16" in int8["build"] and "--stronglyTyped" not in int8["build"]


def test_flag_tables_follow_nvidias_migration_guides():
    assert {"--int8", "--fp16", "--best", "--calib"} <= trtexec_accepts((10, 13))
    assert not {"--int8", "--fp16", "--best", "--calib"} & trtexec_accepts((11, 4))
    assert "--workspace" in trtexec_accepts((8, 5)) and "--workspace" not in trtexec_accepts((10, 0))
    assert "--builderOptimizationLevel" not in trtexec_accepts((8, 5)) and "--stronglyTyped" in trtexec_accepts((10, 3))
    assert unknown_flags("trtexec --onnx=m.onnx --int8 --fp16", (11, 4)) == ["--int8", "--fp16"]


def test_a_line_with_a_removed_flag_is_refused():
    recipes = _render(precisions=["fp16"])
    eleven = next(r for r in recipes if r["name"] == "trt11")
    eleven["engines"][0]["build"] += " --fp16"
    with pytest.raises(EdgeresError, match="--fp16, which the trtexec of TensorRT 11.0"):
        check_rendered(recipes)


def test_gpu_is_the_default_engine_with_dla_rows_beside_it():
    opts = get_target("jetson-orin").options
    variants, notes = engine_variants(["fp32", "fp16", "int8"], opts, 2)
    assert [v.label for v in variants] == ["fp32", "fp16", "fp16 @ dla0", "int8", "int8 @ dla0"]
    assert [v.engine_file for v in variants][-1] == "model_int8_dla0.engine" and not notes
    variants, notes = engine_variants(["fp32", "fp16", "int8"], opts, 0)     # an Orin Nano reports no DLA
    assert [v.label for v in variants] == ["fp32", "fp16", "int8"] and "no DLA cores" in notes[0]
    nano = get_target("orin-nano")
    assert [v.label for v in engine_variants(["fp16", "int8"], nano.options, 0)[0]] == ["fp16", "int8"]
    assert [v.label for v in engine_variants(["fp16"], get_target("nvidia-gpu").options, None)[0]] == ["fp16"]


def test_dla_engines_are_built_for_one_static_batch():
    """NVIDIA's DLA restrictions: no dynamic dimensions, so min = opt = max for DLA engines."""
    weak = {e["variant"]: e for e in _render()[0]["engines"]}
    assert "--minShapes=input:1x3x224x224" in weak["int8"]["build"] and "--maxShapes=input:8x3x224x224" in \
        weak["int8"]["build"]
    dla = weak["int8 @ dla0"]["build"]
    assert "--minShapes=input:1x3x224x224 --optShapes=input:1x3x224x224 --maxShapes=input:1x3x224x224" in dla


def test_dla_only_option_keeps_the_gpu_free():
    opts = {**get_target("jetson-orin").options, "dla_core": 1}
    variants, _ = engine_variants(["fp32", "fp16", "int8"], opts, 2)
    assert [v.label for v in variants] == ["fp32", "fp16 @ dla1", "int8 @ dla1"]   # DLA cannot run fp32
    variants, notes = engine_variants(["int8"], opts, 1)
    assert [v.label for v in variants] == ["int8"] and "has 1 DLA core(s)" in notes[0]


def test_int8_runs_its_float_layers_in_fp16_with_every_recipe():
    for r in _render():
        int8 = {e["variant"]: e for e in r["engines"]}["int8"]
        assert int8["execution_precision"] == "int8+fp16", r["name"]
        expected = "onnx/model_int8_qdq.onnx" if r["typed_mode"] == "weak" else "onnx/model_int8_qdq_fp16.onnx"
        assert int8["onnx"] == expected


# --- TensorRT 11 on the fake: no weak typing, no precision flags ----------------------------------

@pytest.fixture
def trt11(monkeypatch):
    calls: list = []
    trt = make_tensorrt("11.4.1.2", calls, dla_cores=2)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(trt_cuda, "cuda_runtime", lambda: FakeCuda(cc=(8, 7)))
    return trt, calls


def test_fake_tensorrt_11_has_no_precision_flags_or_calibrator(trt11):
    trt, _ = trt11
    for name in ("FP16", "INT8", "BF16"):
        assert not hasattr(trt.BuilderFlag, name)
    assert not hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    builder = trt.Builder(trt.Logger())
    assert not hasattr(builder, "platform_has_fast_int8")
    with pytest.raises(AttributeError, match="int8_calibrator"):
        builder.create_builder_config().int8_calibrator = object()


def test_strongly_typed_int8_builds_on_tensorrt_11_without_flags(trt11, tmp_path):
    _, calls = trt11
    onnx = tmp_path / "q.onnx"
    onnx.write_bytes(b"onnx")
    plan = plan_engine("int8", (11, 4, 1), get_target("jetson").options, batch=BatchProfile(1, 1, 8), num_dla_cores=2)
    assert plan.typed_mode == "strong" and plan.builder_flags == ()
    trt_backend.build_engine(onnx, tmp_path / "model_int8.engine", plan, target="jetson-orin")
    assert [c[1] for c in calls if c[0] == "set_flag"] == []
    assert [c[1] for c in calls if c[0] == "create_network"] == [1 << 1]   # STRONGLY_TYPED (accepted, ignored)


def test_a_weakly_typed_build_fails_on_tensorrt_11_as_on_the_device(trt11, tmp_path):
    onnx = tmp_path / "q.onnx"
    onnx.write_bytes(b"onnx")
    weak = plan_engine("int8", (10, 3), {}, batch=BatchProfile(1, 1, 8))   # INT8 + FP16 flags
    with pytest.raises(EdgeresError, match="TensorRT 11.4.1.2 has no builder flag INT8"):
        trt_backend.build_engine(onnx, tmp_path / "model_int8.engine", weak, target="jetson-orin")
    assert not (tmp_path / "model_int8.engine").exists()
    with pytest.raises(EdgeresError, match="builds only strongly typed"):
        plan_engine("int8", (11, 4), {"typed_mode": "weak"})


def test_dla_engine_records_the_layers_that_fall_back_to_the_gpu(trt11, tmp_path):
    onnx = tmp_path / "q.onnx"
    onnx.write_bytes(b"onnx")
    variant = EngineVariant("int8", 0)
    plan = plan_engine("int8", (11, 4), {"dla_core": variant.dla_core}, num_dla_cores=2)
    art = trt_backend.build_engine(onnx, tmp_path / variant.engine_file, plan, target="jetson-orin")
    assert art.metadata["dla_gpu_fallback_layers"] == ["pool"] and "--useDLACore=0" in art.metadata["trtexec"]


def test_each_engine_has_a_throughput_line_on_several_contexts_at_the_largest_batch():
    recipes = {r["name"]: {e["variant"]: e for e in r["engines"]} for r in _render()}
    weak, eleven = recipes["trt8.5-10.11"], recipes["trt11"]
    assert "--streams=2" in weak["int8"]["throughput"] and "--infStreams" not in weak["int8"]["throughput"]  # 8.5
    assert "--infStreams=2" in eleven["int8"]["throughput"]
    assert "--shapes=input:8x3x224x224" in eleven["int8"]["throughput"]          # the jetson profile's max batch
    assert "--shapes=input:1x3x224x224 --useDLACore=0" in eleven["int8 @ dla0"]["throughput"]   # DLA: batch 1
    assert unknown_flags("trtexec --loadEngine=e --infStreams=2", (8, 5)) == ["--infStreams"]
