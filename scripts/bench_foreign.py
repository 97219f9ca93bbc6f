#!/usr/bin/env python3
"""`edgeres bench` on a model edgeres did not write, against OpenVINO's benchmark_app on the same file.

  edgeres bench MODEL latency p50        vs  benchmark_app -hint latency median
  edgeres bench MODEL throughput mode    vs  benchmark_app -hint throughput FPS

MODEL is an OpenVINO IR (.xml + .bin) or an ONNX (run on OpenVINO here), e.g. from ``ovc`` or
``openvino.save_model``. Both sides use OpenVINO's defaults, as a user gets them: no inference
precision forced, every core (benchmark_app refuses -nthreads beside a hint), the model's batch
(1 when it is dynamic). Each pair is measured --rounds times in alternating order; the ratio is
the median of per-round ratios, each figure states the CPU time other processes used meanwhile.
Bars as scripts/bench_cpu.py: latency <= 1.03x benchmark_app's median, throughput >= 0.97x.
Writes OUT/bench_foreign.json.

    python scripts/bench_foreign.py model.xml --seconds 10 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cpu import BARS, _as_p50, _load_text, _rounds, benchmark_app, log

from edgeres.evaluate import open_for_bench
from edgeres.validate.load import loadavg


def compare(model: Path, args: argparse.Namespace) -> dict[str, Any]:
    from edgeres.validate import measure_latency
    from edgeres.validate.throughput import measure_throughput

    opened = open_for_bench(model, backend="openvino")
    batch = opened.fixed_batch or 1
    shape = (batch, *opened.input_shape)
    info = dict(opened.runner.info)

    def ours_latency() -> dict[str, Any]:
        r = measure_latency(opened.runner, opened.input_shape, (batch,), min_runs=args.min_runs,
                            min_seconds=args.seconds, warmup=10)[0]
        return {"p50_ms": r.p50_ms, "runs": r.iterations, "threads": r.threads, "load": r.load}

    def ours_throughput() -> dict[str, Any]:
        t = measure_throughput(opened.runner, opened.input_shape, (batch,), min_seconds=args.seconds)
        return {"fps": t.images_per_second, "runs": t.runs, "streams": t.streams, "requests": t.requests,
                "threads": t.threads, "mode": t.mode, "load": t.load}

    log(f"{model.name}: edgeres latency vs benchmark_app -hint latency, then throughput, {args.rounds} round(s)")
    try:
        lat = _rounds(ours_latency, lambda: _as_p50(benchmark_app(model, "latency", args, None, shape)), "p50_ms",
                      args.rounds)
        tput = _rounds(ours_throughput, lambda: benchmark_app(model, "throughput", args, None, shape), "fps",
                       args.rounds)
    finally:
        opened.runner.close()
    rows = []
    for (ours, ref, ratio), what, key, name, bar in (
            (lat, f"latency p50 ms, batch {batch}", "p50_ms", "benchmark_app -hint latency (median)",
             ("<=", BARS["latency_vs_benchmark_app"])),
            (tput, f"throughput img/s, batch {batch}", "fps", "benchmark_app -hint throughput",
             (">=", BARS["throughput_vs_benchmark_app"]))):
        ok = ratio <= bar[1] if bar[0] == "<=" else ratio >= bar[1]
        rows.append({"what": what, "edgeres": ours[key], "reference": ref[key], "reference_name": name,
                     "ratio": ratio, "bar": bar, "met": ok, "edgeres_detail": ours, "reference_detail": ref})
    return {"model": str(model), "precision": opened.description.get("precision"),
            "inference_precision": info.get("inference_precision_readback"),
            "executed": info.get("execution_precision"), "rows": rows}


def table(report: dict[str, Any]) -> str:
    lines = [(f"{report['model']}: holds {report['precision']}, OpenVINO's default inference precision "
              f"{report['inference_precision']} (executed {report['executed']}); load average "
              f"{report['loadavg_start']} -> {report['loadavg_end']}"),
             f"{'figure':<28} {'edgeres':>9} {'benchmark_app':>14} {'ratio':>6}  bar          others (ours / ref)"]
    for r in report["rows"]:
        op, bar = r["bar"]
        lines.append(f"{r['what']:<28} {r['edgeres']:>9.3f} {r['reference']:>14.3f} {r['ratio']:>6.3f}  "
                     f"{op} {bar} {'met' if r['met'] else 'NOT met':<7}  {_load_text(r['edgeres_detail']['load'])} / "
                     f"{_load_text(r['reference_detail']['load'])}")
    d = report["rows"][1]
    lines.append(f"throughput modes: edgeres {d['edgeres_detail']['mode']}, {d['edgeres_detail']['streams']} streams, "
                 f"{d['edgeres_detail']['requests']} requests, {d['edgeres_detail']['threads']} threads; benchmark_app "
                 f"{d['reference_detail']['streams']} streams, {d['reference_detail']['requests']} requests, "
                 f"{d['reference_detail']['threads']} threads ({d['reference_detail']['command']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="an OpenVINO IR (.xml + .bin) or an ONNX")
    ap.add_argument("--min-runs", type=int, default=100, help="at least this many runs per figure (default 100)")
    ap.add_argument("--seconds", type=float, default=5.0, help="and at least this long per figure (default 5)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per pair (default 2)")
    ap.add_argument("--out", default="bench-out", help="output folder (default bench-out/)")
    args = ap.parse_args(argv)
    start = loadavg()
    report = compare(args.model, args)
    report.update({"loadavg_start": start, "loadavg_end": loadavg(), "min_runs": args.min_runs,
                   "seconds": args.seconds, "rounds": args.rounds,
                   "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_foreign.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(table(report))
    log(f"wrote {out / 'bench_foreign.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
