"""ONNX preparation for TensorRT (host side: needs ``onnx`` and numpy, not TensorRT).

Strongly typed TensorRT (10.12+, and every 11.x) takes each tensor's precision from the
ONNX. ``to_fp16`` writes the FP16 copy of an FP32 model that FP16 engines are built from;
the conversion is onnxconverter-common's, with FP32 input and output kept and values FP16
cannot hold left in FP32 (``edgeres.backends.tensorrt_fp16``, which also writes the
strongly typed INT8 form of a Q/DQ model).
"""

from __future__ import annotations

import os
from pathlib import Path


def to_fp16(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Write an FP16 copy of the FP32 ONNX ``src`` to ``dst`` (atomically), FP32 input and output kept."""
    from edgeres.backends.tensorrt_fp16 import fp16_copy

    return fp16_copy(src, dst).path
