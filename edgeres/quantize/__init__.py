"""INT8 post-training quantization: an FP32 ONNX and a calibration set in, an explicit
symmetric Q/DQ ONNX out, ready for TensorRT's explicit quantization and for ONNX Runtime.

- ``calibrate.py``: activation ranges (entropy, minmax, percentile, mse), cached on disk.
- ``qdq.py``: which layers and tensors get Q/DQ and in which form (placement), layer names.
- ``sensitivity.py``: per-layer sensitivity ranking and the accuracy-budget fallback loop.
- ``quantizer.py``: ``quantize_onnx``, the three steps above in order, and the sidecar it writes.

Torch-free: numpy, onnx and onnxruntime only.
"""

from edgeres.quantize.calibrate import DEFAULT_METHOD, METHODS, Calibration, calibrate
from edgeres.quantize.qdq import ORT_DISABLED_OPTIMIZERS, PLACEMENTS, weighted_layers
from edgeres.quantize.quantizer import INT8_NAME, default_keep_fp, format_sensitivity, quantize_onnx

__all__ = [
    "DEFAULT_METHOD", "INT8_NAME", "METHODS", "ORT_DISABLED_OPTIMIZERS", "PLACEMENTS", "Calibration", "calibrate",
    "default_keep_fp", "format_sensitivity", "quantize_onnx", "weighted_layers",
]
