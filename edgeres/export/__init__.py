"""torch -> ONNX export and torch-free ONNX file helpers.

Importing this package does not import torch: ``export_onnx`` imports it when called.
"""

from __future__ import annotations

from edgeres.export.exporter import EXPORTERS, export_onnx, fold_batchnorm
from edgeres.export.graph import (
    check_onnx,
    clean_graph,
    graph_precision,
    load_onnx,
    onnx_input_spec,
    onnx_output_spec,
    op_counts,
    read_metadata,
    set_metadata,
)

__all__ = [
    "EXPORTERS", "check_onnx", "clean_graph", "export_onnx", "fold_batchnorm", "graph_precision", "load_onnx",
    "onnx_input_spec", "onnx_output_spec", "op_counts", "read_metadata", "set_metadata",
]
