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
    onnx/model_fp32.onnx         FP32 ONNX: FP16 (weakly typed) and FP32 engines
    onnx/model_fp16.onnx         FP16 copy, FP32 I/O: FP16 engines on strongly typed TensorRT
    onnx/model_int8_qdq.onnx     explicitly quantized (Q/DQ) ONNX: INT8 engines
    validation/inputs.npy        preprocessed inputs (N, C, H, W) float32
    validation/labels.npy        their labels (N,) int64, when known
    validation/reference_logits.npy   FP32 reference logits (N, classes) float32

The device side needs only ``tensorrt``, numpy and a CUDA binding: no torch, no image
decoding (the slice is already preprocessed), no onnx.

``layout`` names the files and reads a kit, ``write`` makes one on the host, ``build``
builds, validates and times its engines on the device through the target's backend.
"""

from edgeres.kit.build import build_kit
from edgeres.kit.layout import DEFAULT_SLICE, KIT_JSON, KIT_SCHEMA, KIT_SCHEMA_VERSION, REPORT_JSON, Kit, load_kit
from edgeres.kit.write import KitResult, kit_plans, write_kit

__all__ = ["DEFAULT_SLICE", "KIT_JSON", "KIT_SCHEMA", "KIT_SCHEMA_VERSION", "REPORT_JSON", "Kit", "KitResult",
           "build_kit", "kit_plans", "load_kit", "write_kit"]
