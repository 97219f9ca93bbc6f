"""The report of a build: what each target/precision costs in accuracy and buys in latency.

``write_report(rows, out_dir, timing=...)`` writes three files:

- ``report.json``: versioned schema (``schema`` = "edgeres.report", ``schema_version`` = 1), the
  environment (``edgeres.hostinfo.environment()``: CPU, GPU, OS, Python, backend versions), what
  was timed, one row per (target, precision);
- ``report.md``: the summary table and what was timed;
- ``accuracy_latency.png``: top-1 (or agreement with the FP32 reference) against p50 latency,
  one labeled point per target/precision, the Pareto front drawn (needs matplotlib; skipped
  with a note when it is missing).

``merge_reports(paths)`` combines several reports (builds on this machine, a ``kit-report.json``
brought back from a Jetson) into one comparison. Numpy-free and torch-free.

Modules: ``rows`` (a row, the summary table), ``document`` (the ``Report`` and its JSON form),
``markdown``, ``plot``, ``files`` (write / read a report folder), ``merge``.
"""

from edgeres.report.document import KIT_REPORT_JSON, PLOT_PNG, REPORT_JSON, REPORT_MD, SCHEMA, SCHEMA_VERSION, Report
from edgeres.report.files import read_report, write_report
from edgeres.report.merge import merge_reports
from edgeres.report.plot import pareto_front, plot_metric
from edgeres.report.rows import ResultRow, as_rows, summary_table

__all__ = [
    "KIT_REPORT_JSON", "PLOT_PNG", "REPORT_JSON", "REPORT_MD", "SCHEMA", "SCHEMA_VERSION", "Report", "ResultRow",
    "as_rows", "merge_reports", "pareto_front", "plot_metric", "read_report", "summary_table", "write_report",
]
