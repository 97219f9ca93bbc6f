"""Device build kits: everything a Jetson (or any NVIDIA GPU) needs to build and check its own engines.

TensorRT engines only run on the GPU architecture and TensorRT version that built them, so
a host that cannot build for the device writes a kit instead (``write_kit``), and the
device runs ``edgeres kit build KIT`` (``build_kit``): it builds the engine(s) with its own
TensorRT, validates them on the kit's validation slice against the labels and the FP32
reference logits, benchmarks them, and writes ``kit-report.json``.

Layout of a kit directory (also packed as ``<kit>.tar.gz``)::

    kit.json                     versioned manifest: target, precisions, profile, files + sha256
    README.md                    what to run on the device, and the equivalent trtexec lines
    preprocess.json              the preprocessing the validation slice (and your app) uses
    onnx/model_fp32.onnx         FP32 ONNX: FP32 engines, and FP16 ones on TensorRT < 10.12 (FP16 flag)
    onnx/model_fp16.onnx         FP16 copy, FP32 I/O: FP16 engines on strongly typed TensorRT (10.12+, 11)
    onnx/model_int8_qdq.onnx     Q/DQ ONNX, opset 17: INT8 engines on TensorRT < 10.12 (INT8+FP16 flags)
    onnx/model_int8_qdq_fp16.onnx  Q/DQ ONNX, opset 19, FP16 outside the Q/DQ pairs: strongly typed INT8
    onnx/model_fp32_opset13.onnx   the FP32 ONNX at opset 13, for TensorRT 8.2 (Jetson Nano) only
    validation/inputs.npy        preprocessed inputs (N, C, H, W) float32
    validation/labels.npy        their labels (N,) int64, when known
    validation/reference_logits.npy   FP32 reference logits (N, classes) float32

Before a kit is written, every ONNX in it runs here under ONNX Runtime on the validation
slice and must match the FP32 reference within tolerance, and the Q/DQ files pass the
TensorRT explicit-quantization lint (``edgeres.backends.tensorrt_proof``); both results are
in ``kit.json``. The README's trtexec lines come from the per-version recipes
(``edgeres.backends.tensorrt_recipes``), checked against the flags each trtexec takes. On the
device, GPU engines are built for every precision and DLA rows beside them where the device
and its TensorRT have a DLA; the device's release, power mode and clock state go into the report.

The device side needs only ``tensorrt``, numpy and a CUDA binding: no torch, no image
decoding (the slice is already preprocessed), no onnx.

The FP16 forms are written only where a recipe may build strongly typed (TensorRT 9.1+), and
only the recipes for the TensorRT versions the target's device can have are in a kit.

``layout`` names the files and reads a kit, ``write`` makes one on the host, ``readme`` writes its
README, ``build``
builds, validates and times its engines on the device through the target's backend.
"""

from edgeres.kit.build import build_kit
from edgeres.kit.layout import DEFAULT_SLICE, KIT_JSON, KIT_SCHEMA, KIT_SCHEMA_VERSION, REPORT_JSON, Kit, load_kit
from edgeres.kit.write import KitResult, write_kit

__all__ = ["DEFAULT_SLICE", "KIT_JSON", "KIT_SCHEMA", "KIT_SCHEMA_VERSION", "REPORT_JSON", "Kit", "KitResult",
           "build_kit", "load_kit", "write_kit"]
