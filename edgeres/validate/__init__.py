"""Validation: accuracy against labels and the FP32 reference, latency and throughput.

numpy only (no torch): this runs on the device. The build report lives in ``edgeres.report``.
"""

from edgeres.validate.latency import LatencyResult, format_latency, measure_latency, peak_rss_mb
from edgeres.validate.metrics import AccuracyResult, collect_logits, compare, cosine_similarity, topk_accuracy
from edgeres.validate.runner import artifact_input_shape, load_runner

__all__ = [
    "AccuracyResult", "LatencyResult", "artifact_input_shape", "collect_logits", "compare",
    "cosine_similarity", "format_latency", "load_runner", "measure_latency", "peak_rss_mb", "topk_accuracy",
]
