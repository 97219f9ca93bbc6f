"""Camera frames into the engine: uint8 HWC RGB/BGR in, the host's normalisation as ONNX ops
(ONNX Runtime) or OpenVINO's PrePostProcessor, checked against the host path on real photographs."""

from __future__ import annotations

import numpy as np
import pytest
from test_bundle_support import CLASSES, PREPROCESS, tiny_artifact, tiny_onnx, write_target

from edgeres.bundle import load_bundle, make_bundle
from edgeres.bundle.frames import load_frame_runner
from edgeres.data.demo import skimage_data_dir
from edgeres.errors import EdgeresError
from edgeres.export.frame_input import add_frame_input, openvino_frame_model
from edgeres.targets import load_target_file

PHOTOS = ("rocket.jpg", "chelsea.png", "coffee.png", "logo.png", "camera.png")


def frames(spec) -> list[np.ndarray]:
    from PIL import Image

    return [spec.crop_frame(Image.open(skimage_data_dir() / name)) for name in PHOTOS]


def as_order(frame: np.ndarray, order: str) -> np.ndarray:
    return np.ascontiguousarray((frame if order == "RGB" else frame[..., ::-1])[None])


@pytest.fixture
def ort_bundle(tmp_path):
    target = load_target_file(write_target(tmp_path / "targets"))
    out = make_bundle(tiny_artifact(tmp_path / "build"), tmp_path / "tiny", target=target,
                      model_info={"depth": 18, "num_classes": 10}, preprocess=PREPROCESS, labels=CLASSES)
    with load_bundle(out) as bundle:
        yield bundle


@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_onnx_frame_input_computes_what_the_host_computes(ort_bundle, order):
    host = ort_bundle.load_runner()
    fused = load_frame_runner(ort_bundle, order)
    for frame in frames(ort_bundle.preprocess):
        expected = host(ort_bundle.preprocess.normalize(frame)[None])
        np.testing.assert_allclose(fused(as_order(frame, order)), expected, rtol=0, atol=1e-5)


def test_frame_graph_takes_uint8_nhwc_and_says_so(tmp_path):
    import onnx

    tiny_onnx(tmp_path / "m.onnx")
    model = add_frame_input(onnx.load(str(tmp_path / "m.onnx")), PREPROCESS, "BGR")
    (inp,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "frame" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert dims == ["batch", 32, 32, 3]
    ops = [n.op_type for n in model.graph.node]
    assert ops[:6] == ["Cast", "Div", "Gather", "Sub", "Div", "Transpose"]  # BGR camera, RGB model


def test_frame_runner_refuses_float_or_uncropped_frames(ort_bundle):
    runner = load_frame_runner(ort_bundle)
    with pytest.raises(EdgeresError, match="uint8 frames of shape"):
        runner(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(EdgeresError, match="crop on the host first"):
        runner(np.zeros((1, 40, 40, 3), np.uint8))
    with pytest.raises(EdgeresError, match="RGB or BGR"):
        load_frame_runner(ort_bundle, "YUV")


@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_openvino_preprocessing_computes_what_the_host_computes(tmp_path, order):
    ov = pytest.importorskip("openvino")
    tiny_onnx(tmp_path / "m.onnx")
    core = ov.Core()
    plain = core.compile_model(ov.convert_model(str(tmp_path / "m.onnx"), input=[1, 3, 32, 32]), "CPU",
                               {"INFERENCE_PRECISION_HINT": "f32"})
    model = ov.convert_model(str(tmp_path / "m.onnx"), input=[1, 3, 32, 32])
    fused = core.compile_model(openvino_frame_model(model, PREPROCESS, order), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    for frame in frames(PREPROCESS):
        expected = plain(PREPROCESS.normalize(frame)[None])[0]
        np.testing.assert_allclose(fused(as_order(frame, order))[0], expected, rtol=0, atol=1e-4)
