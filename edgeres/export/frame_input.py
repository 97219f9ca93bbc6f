"""Camera frames straight into the model: uint8 HWC (RGB or BGR) in, logits out.

The host keeps what is geometry (decode, resize, center-crop: ``PreprocessSpec.crop_frame``) and
the engine takes over the arithmetic of ``PreprocessSpec.normalize``, in the same float32 order
(x / 255, channel order, - mean, / std, layout), so the fused path computes what the host did:

* ONNX (ONNX Runtime, TensorRT): ``add_frame_input`` puts Cast, Gather (colour order), Div, Sub,
  Div and Transpose in front of the graph's input;
* OpenVINO: ``openvino_frame_model`` asks OpenVINO's PrePostProcessor for the same steps, which it
  compiles into the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeres.data.preprocess import PreprocessSpec
from edgeres.errors import EdgeresError

FRAME_INPUT = "frame"
FRAME_ORDERS = ("RGB", "BGR")


def check_order(order: str) -> str:
    if order not in FRAME_ORDERS:
        raise EdgeresError(f"frame channel order must be RGB or BGR, got {order!r}")
    return order


def add_frame_input(model: Any, spec: PreprocessSpec, order: str = "RGB") -> Any:
    """A copy of ``model`` (an ``onnx.ModelProto`` taking the preprocessed float32 batch) whose one
    input is ``frame``: uint8, [batch, crop, crop, 3], channels in ``order``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    check_order(order)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise EdgeresError(f"the model has {len(inputs)} inputs; a frame input needs exactly one image input")
    old = inputs[0]
    batch = old.type.tensor_type.shape.dim[0]
    batch_dim: int | str = batch.dim_param or batch.dim_value or "batch"

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, f"{FRAME_INPUT}_{name}"))
        return f"{FRAME_INPUT}_{name}"

    nodes = [helper.make_node("Cast", [FRAME_INPUT], ["frame_f32"], to=TensorProto.FLOAT, name="frame_cast")]
    x = "frame_f32"
    nodes.append(helper.make_node("Div", [x, const("255", np.array(255.0, np.float32))], ["frame_unit"],
                                  name="frame_to_unit"))
    x = "frame_unit"
    if order != spec.channel_order:  # the camera's order is not the model's: reverse the channel axis
        nodes.append(helper.make_node("Gather", [x, const("reverse", np.array([2, 1, 0], np.int64))],
                                      ["frame_ordered"], axis=3, name="frame_colour_order"))
        x = "frame_ordered"
    nodes.append(helper.make_node("Sub", [x, const("mean", np.asarray(spec.mean, np.float32))], ["frame_centred"],
                                  name="frame_mean"))
    last = old.name if spec.layout == "NHWC" else "frame_scaled"
    nodes.append(helper.make_node("Div", ["frame_centred", const("std", np.asarray(spec.std, np.float32))], [last],
                                  name="frame_std"))
    if spec.layout == "NCHW":
        nodes.append(helper.make_node("Transpose", [last], [old.name], perm=[0, 3, 1, 2], name="frame_layout"))

    frame = helper.make_tensor_value_info(FRAME_INPUT, TensorProto.UINT8, [batch_dim, spec.crop, spec.crop, 3])
    kept = [i for i in graph.input if i.name != old.name]
    del graph.input[:]
    graph.input.extend([frame, *kept])
    for node in reversed(nodes):
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    return model


def openvino_frame_model(model: Any, spec: PreprocessSpec, order: str = "RGB") -> Any:
    """An ``openvino.Model`` taking the preprocessed float32 batch -> the same model taking uint8
    NHWC frames in ``order``: OpenVINO's PrePostProcessor, compiled into the model."""
    from openvino import Layout, Type
    from openvino.preprocess import ColorFormat, PrePostProcessor

    check_order(order)
    colour = {"RGB": ColorFormat.RGB, "BGR": ColorFormat.BGR}
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(Type.u8).set_layout(Layout("NHWC")).set_color_format(colour[order])
    ppp.input().model().set_layout(Layout(spec.layout))
    (ppp.input().preprocess().convert_element_type(Type.f32).scale(255.0)
     .convert_color(colour[spec.channel_order]).mean(list(spec.mean)).scale(list(spec.std)))
    return ppp.build()


def main(argv: list[str] | None = None) -> int:
    """``python -m edgeres.export.frame_input IN.onnx OUT.onnx --preprocess preprocess.json --order BGR``:
    the frame-input ONNX for TensorRT (build it with the kit README's trtexec line, input ``frame``)."""
    import argparse
    import sys

    import onnx

    from edgeres.fileio import atomic_path, load_json

    p = argparse.ArgumentParser(prog="python -m edgeres.export.frame_input", description=main.__doc__)
    p.add_argument("onnx", help="the model's ONNX (float32 NCHW input), e.g. a kit's onnx/model_int8_qdq.onnx")
    p.add_argument("out", help="where to write the frame-input ONNX (must not exist)")
    p.add_argument("--preprocess", required=True, help="the preprocessing JSON (a kit's preprocess.json)")
    p.add_argument("--order", default="RGB", choices=FRAME_ORDERS, help="the camera's channel order")
    args = p.parse_args(argv)
    try:
        out = Path(args.out)
        if out.exists():
            raise EdgeresError(f"{out} exists; choose a new file name")
        spec = PreprocessSpec.from_dict(load_json(args.preprocess, f"preprocessing {args.preprocess}:"))
        try:
            model = onnx.load(args.onnx)
        except Exception as exc:  # noqa: BLE001 - onnx raises several types for a bad file
            raise EdgeresError(f"cannot read ONNX {args.onnx}: {exc}") from None
        with atomic_path(out) as tmp:
            onnx.save(add_frame_input(model, spec, args.order), str(tmp))
    except EdgeresError as exc:
        print(f"edgeres frame_input: error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: input 'frame' uint8 [batch, {spec.crop}, {spec.crop}, 3] {args.order}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
