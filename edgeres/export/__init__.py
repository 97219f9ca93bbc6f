"""torch -> ONNX export: BatchNorm folding, the exporter, clean-up of the exported graph.

Importing this package does not import torch: ``export_onnx`` imports it when called. The
torch-free ONNX file helpers (load, input spec, metadata) live in ``edgeres.onnxutil``.
"""

from __future__ import annotations

from edgeres.export.exporter import EXPORTERS, export_onnx, fold_batchnorm
from edgeres.export.graph import clean_graph

__all__ = ["EXPORTERS", "clean_graph", "export_onnx", "fold_batchnorm"]
