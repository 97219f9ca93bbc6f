"""TensorRT decisions that need no TensorRT: versions, typed mode, plans, profiles, compatibility."""

from __future__ import annotations

import pytest

from edgeres.artifact import BatchProfile
from edgeres.backends.tensorrt_plan import (
    check_engine_compat,
    check_target_precision,
    choose_typed_mode,
    has_fast_fp16,
    has_fast_int8,
    int8_refusal,
    parse_cc,
    parse_version,
    plan_engine,
    platform_support,
    profile_shapes,
    resolve_options,
    trtexec_command,
)
from edgeres.errors import EdgeresError
from edgeres.targets import get_target


@pytest.mark.parametrize("text,expected", [
    ("10.13.0.35", (10, 13, 0, 35)), ("8.5.2-1+cuda11.4", (8, 5, 2, 1)), ("10.3.0", (10, 3, 0)), ((8, 6), (8, 6)),
])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("value,expected", [("8.7", (8, 7)), (7.2, (7, 2)), ("sm_87", (8, 7)), ("53", (5, 3)),
                                            ((9, 0), (9, 0)), ("12.0", (12, 0))])
def test_parse_cc(value, expected):
    assert parse_cc(value) == expected


def test_parse_cc_rejects_garbage():
    with pytest.raises(EdgeresError, match="MAJOR.MINOR"):
        parse_cc("orin")


def test_fast_precisions_by_compute_capability():
    assert has_fast_fp16((5, 3)) and not has_fast_int8((5, 3))          # Jetson Nano
    assert has_fast_fp16((6, 2)) and not has_fast_int8((6, 2))          # TX2
    assert not has_fast_fp16((6, 1)) and has_fast_int8((6, 1))          # GTX 10xx
    assert has_fast_fp16((7, 2)) and has_fast_int8((7, 2))              # Xavier
    assert has_fast_fp16((8, 7)) and has_fast_int8((8, 7))              # Orin
    assert "Maxwell" in int8_refusal((5, 3)) and "5.3" in int8_refusal((5, 3))
    assert int8_refusal((8, 7)) is None


def test_platform_support_uses_builder_before_10_5_and_cc_after():
    old = platform_support((8, 5, 2), (7, 2), builder_fp16=True, builder_int8=False)
    assert old["fast_int8"] is False and "Builder" in old["source"]
    new = platform_support((10, 13), (5, 3), builder_fp16=True, builder_int8=True)
    assert new == {"fast_fp16": True, "fast_int8": False, "source": new["source"]}
    assert "deprecated" in new["source"]


@pytest.mark.parametrize("version,mode", [((8, 5, 2), "weak"), ((8, 6, 2), "weak"), ((10, 3, 0), "weak"),
                                          ((10, 11, 0), "weak"), ((10, 12, 0), "strong"), ((10, 13, 0, 35), "strong"),
                                          ((11, 0), "strong")])
def test_typed_mode_by_version(version, mode):
    assert choose_typed_mode(version).mode == mode


def test_typed_mode_requests_checked_against_version():
    assert choose_typed_mode((10, 3), "strong").mode == "strong"
    assert choose_typed_mode((10, 13), "weak").mode == "weak"
    with pytest.raises(EdgeresError, match="9.1"):
        choose_typed_mode((8, 5), "strong")
    with pytest.raises(EdgeresError, match="removed in 11"):
        choose_typed_mode((11, 0), "weak")
    with pytest.raises(EdgeresError, match="typed mode"):
        choose_typed_mode((10, 0), "sometimes")


def test_int8_plan_weakly_typed_on_jetpack5():
    plan = plan_engine("int8", (8, 5, 2), {"dla_core": 0}, batch=BatchProfile(1, 1, 8), num_dla_cores=2)
    assert plan.onnx_role == "qdq" and plan.typed_mode == "weak"
    assert plan.network_flags == ("EXPLICIT_BATCH",)
    assert plan.builder_flags == ("INT8", "FP16", "GPU_FALLBACK")
    assert plan.optimization_level is None and any("8.6" in n for n in plan.notes)
    assert plan.dla_core == 0 and plan.gpu_fallback


def test_int8_plan_strongly_typed_on_trt10_13_has_no_precision_flags():
    plan = plan_engine("int8", (10, 13, 0, 35), {})
    assert plan.network_flags == ("STRONGLY_TYPED",)
    assert plan.builder_flags == () and plan.onnx_role == "qdq"
    assert plan.optimization_level == 3 and plan.workspace_bytes == 1024 << 20


def test_trt10_weak_has_no_explicit_batch_flag():
    plan = plan_engine("int8", (10, 3, 0), {})
    assert plan.network_flags == () and plan.builder_flags == ("INT8", "FP16")


def test_fp16_plans():
    assert plan_engine("fp16", (10, 3), {}).builder_flags == ("FP16",)
    strong = plan_engine("fp16", (10, 13), {})
    assert strong.onnx_role == "fp16" and strong.builder_flags == () and "STRONGLY_TYPED" in strong.network_flags
    fallback = plan_engine("fp16", (10, 13), {}, have_fp16_onnx=False)
    assert fallback.typed_mode == "weak" and fallback.builder_flags == ("FP16",) and fallback.onnx_role == "fp32"
    with pytest.raises(EdgeresError, match="FP16 ONNX"):
        plan_engine("fp16", (11, 0), {}, have_fp16_onnx=False)


def test_fp32_plan_disables_tf32_and_never_uses_dla():
    plan = plan_engine("fp32", (8, 6), {"dla_core": 1}, num_dla_cores=2)
    assert plan.cleared_flags == ("TF32",) and plan.dla_core is None and "GPU_FALLBACK" not in plan.builder_flags
    assert any("DLA runs FP16 and INT8 only" in n for n in plan.notes)


def test_dla_skipped_where_the_device_has_none():
    plan = plan_engine("fp16", (10, 3), {"dla_core": 0}, num_dla_cores=0)
    assert plan.dla_core is None and "GPU_FALLBACK" not in plan.builder_flags
    assert any("0 DLA core" in n for n in plan.notes)


def test_plan_refuses_old_tensorrt_and_bad_precision():
    with pytest.raises(EdgeresError, match="8.5"):
        plan_engine("fp16", (8, 2, 1), {})
    with pytest.raises(EdgeresError, match="bf16"):
        plan_engine("bf16", (10, 13), {})


def test_options_checked():
    assert resolve_options({"workspace_mib": 64, "threads": 4})["workspace_mib"] == 64  # foreign keys ignored
    for bad, msg in [({"typed_mode": "loose"}, "typed_mode"), ({"workspace_mib": 0}, "workspace_mib"),
                     ({"builder_optimization_level": 9}, "0..5"), ({"dla_core": -2}, "dla_core")]:
        with pytest.raises(EdgeresError, match=msg):
            resolve_options(bad)


def test_profile_shapes_from_batch_profile():
    assert profile_shapes(["N", 3, 224, 224], BatchProfile(1, 4, 8)) == ((1, 3, 224, 224), (4, 3, 224, 224),
                                                                         (8, 3, 224, 224))
    assert profile_shapes([-1, 3, 32, 32], BatchProfile(1, 1, 2))[2] == (2, 3, 32, 32)
    assert profile_shapes([1, 3, 32, 32], BatchProfile(1, 1, 8)) is None   # static: no profile
    with pytest.raises(EdgeresError, match="fixed batch of 16"):
        profile_shapes([16, 3, 32, 32], BatchProfile(1, 1, 8))
    with pytest.raises(EdgeresError, match="dimension 2 is dynamic"):
        profile_shapes(["N", 3, "H", "W"], BatchProfile())


def _meta(**kw):
    return {"tensorrt_version": "8.5.2.2", "compute_capability": "8.7", "gpu": "Orin", **kw}


def test_compat_accepts_same_version_and_cc():
    check_engine_compat(_meta(), "8.5.2.2", (8, 7), "Orin")


def test_compat_refuses_other_compute_capability():
    with pytest.raises(EdgeresError) as exc:
        check_engine_compat(_meta(), "8.5.2.2", (7, 2), "Xavier", engine="model_int8.engine")
    msg = str(exc.value)
    assert "compute capability 8.7" in msg and "7.2" in msg and "Rebuild it on this device" in msg


def test_compat_refuses_other_tensorrt_version():
    with pytest.raises(EdgeresError) as exc:
        check_engine_compat(_meta(), "10.3.0.30", (8, 7))
    msg = str(exc.value)
    assert "TensorRT 8.5.2.2" in msg and "10.3.0.30" in msg and "Rebuild it on this device" in msg


def test_compat_refuses_sidecar_without_version():
    with pytest.raises(EdgeresError, match="rebuild it on this device"):
        check_engine_compat({"gpu": "x"}, "10.3", (8, 7))


def test_trtexec_lines():
    weak = plan_engine("int8", (8, 5), {"dla_core": 0}, num_dla_cores=2)
    shapes = profile_shapes(["N", 3, 224, 224], BatchProfile(1, 1, 8))
    cmd = trtexec_command(weak, "onnx/model_int8_qdq.onnx", "model_int8.engine", "input", shapes)
    for part in ["--onnx=onnx/model_int8_qdq.onnx", "--saveEngine=model_int8.engine", "--int8", "--fp16",
                 "--minShapes=input:1x3x224x224", "--optShapes=input:1x3x224x224", "--maxShapes=input:8x3x224x224",
                 "--memPoolSize=workspace:1024", "--timingCacheFile=timing.cache", "--useDLACore=0",
                 "--allowGPUFallback"]:
        assert part in cmd.split()
    assert "--stronglyTyped" not in cmd and "--builderOptimizationLevel" not in cmd
    strong = trtexec_command(plan_engine("int8", (10, 13), {}), "q.onnx", "e.engine", "input", shapes)
    assert "--stronglyTyped" in strong.split() and "--int8" not in strong and "--builderOptimizationLevel=3" in strong
    assert "--noTF32" in trtexec_command(plan_engine("fp32", (10, 13), {}), "m.onnx", "e", "input", None)


def test_nano_refuses_int8_with_the_reason():
    nano = get_target("jetson-nano")
    with pytest.raises(EdgeresError) as exc:
        check_target_precision(nano.name, nano.precisions, nano.device, "int8")
    msg = str(exc.value)
    assert "jetson-nano" in msg and "Maxwell" in msg and "5.3" in msg and "fp16" in msg
    check_target_precision(nano.name, nano.precisions, nano.device, "fp16")


def test_refusal_reason_derived_from_compute_capability():
    with pytest.raises(EdgeresError, match="Maxwell"):
        check_target_precision("custom", ["fp16"], {"compute_capability": "5.3"}, "int8")
    with pytest.raises(EdgeresError, match="supports: fp16"):
        check_target_precision("custom", ["fp16"], {}, "int8")


@pytest.mark.parametrize("name,cc,dla_variants", [("jetson-orin", "8.7", True), ("jetson-xavier", "7.2", True),
                                                  ("jetson-orin-nano", "8.7", False), ("jetson-nano", "5.3", False),
                                                  ("nvidia-gpu", "device", False)])
def test_tensorrt_targets_default_to_the_gpu(name, cc, dla_variants):
    t = get_target(name)
    opts = resolve_options(t.options)
    assert t.backend == "tensorrt" and t.device["compute_capability"] == cc
    assert opts["dla_core"] == -1 and opts["dla_variants"] is dla_variants
    assert get_target("jetson").name == "jetson-orin" and get_target("orin-nano").name == "jetson-orin-nano"
    if name == "jetson-nano":
        assert "int8" not in t.precisions and "fp16" in t.precisions


def test_orin_plan_from_target_options_is_a_gpu_engine():
    orin = get_target("jetson")
    plan = plan_engine("int8", (10, 3, 0), orin.options, batch=orin.batch_profile, num_dla_cores=2)
    assert plan.dla_core is None and plan.builder_flags == ("INT8", "FP16")
    assert plan.batch == BatchProfile(1, 1, 8)
