#!/usr/bin/env python3
"""CPU benchmark: edgeres against each runtime's own tool, on the same IR / ONNX, in one run.

  OpenVINO fp32, bf16, int8 (NNCF):  edgeres latency p50        vs  benchmark_app -hint latency median
                                     edgeres throughput mode    vs  benchmark_app -hint throughput FPS
  ONNX Runtime fp32, int8 (Q/DQ):    edgeres runner p50         vs  a raw InferenceSession (same file, options)
  PyTorch eager fp32, NCHW and channels_last: the framework baseline
  INT8 ResNet batch 1 as a fraction of the CPU's INT8 peak (MACs/cycle/core x cores x clock, formula printed)

The artifacts are those `edgeres build` makes (intel-cpu and cpu targets, random weights), built into
OUT/build-* and reused on the next run. Every figure is timed until both --min-runs runs and --seconds
seconds are reached, with the CPU load sampled before and during it (other processes' CPU use, load
average, steal): a figure taken on a busy machine is flagged, never passed off as quiet.

Bars (ratios in the same run): edgeres latency p50 <= 1.03x benchmark_app's median; edgeres
throughput >= 0.97x benchmark_app's throughput hint; INT8 batch 1 >= 60% of the INT8 peak.
Writes OUT/bench_cpu.json and OUT/bench_cpu.md.

    python scripts/bench_cpu.py                        # ResNet-50, every configuration (~5 min)
    python scripts/bench_cpu.py --depth 18 --seconds 2 --min-runs 50    # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgeres import hostinfo
from edgeres.validate.load import loadavg, measure_under_load, sample_load, wait_for_quiet

SHAPE = (3, 224, 224)
ORT_BATCHES = (1, 8)  # ONNX Runtime throughput: the best of these batches x (all threads | one per request)
BARS = {"latency_vs_benchmark_app": 1.03, "throughput_vs_benchmark_app": 0.97, "int8_peak_fraction": 0.60}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- the artifacts ----------------------------------------------------------------------------

def build_artifacts(depth: int, out: Path, ov_precisions: list[str]) -> dict[str, Path]:
    """`edgeres build` for intel-cpu and cpu (stages reused on a re-run): artifact path per config."""
    from edgeres.pipeline import BuildRequest, build

    paths: dict[str, Path] = {}
    for target, precisions, prefix in (("intel-cpu", ov_precisions, "ov"), ("cpu", ["fp32", "int8"], "ort")):
        log(f"edgeres build --target {target} --depth {depth} --precision {','.join(precisions)}")
        result = build(BuildRequest(target=target, depth=depth, out_dir=out / f"build-{target}",
                                    precisions=precisions, bench_seconds=0.05, bench_runs=1))
        for row in result.rows:
            paths[f"{prefix}-{row['precision']}"] = Path(row["extra"]["artifact"])
    return paths


def _build_quietly(depth: int, out: Path, ov_precisions: list[str]) -> dict[str, Path]:
    """``build_artifacts`` with the libraries' progress bars (NNCF prints to stdout) sent to stderr:
    stdout carries the table only."""
    with contextlib.redirect_stdout(sys.stderr):
        return build_artifacts(depth, out, ov_precisions)


# --- benchmark_app ----------------------------------------------------------------------------

def benchmark_app_command() -> list[str]:
    exe = Path(sys.executable).with_name("benchmark_app")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("benchmark_app")
    return [found] if found else [sys.executable, "-m", "openvino.tools.benchmark.main"]


def benchmark_app(xml: Path, hint: str, args: argparse.Namespace, infer_precision: str | None,
                  shape: tuple[int, ...] = (1, *SHAPE)) -> dict[str, Any]:
    """Run OpenVINO's benchmark_app on ``xml`` (batch 1) and parse its summary. With both -niter and -t
    it runs until both are reached, as edgeres does. ``infer_precision`` None: OpenVINO's default."""
    flags = ["-m", str(xml), "-d", "CPU", "-hint", hint, "-niter", str(args.min_runs), "-t",
             str(max(1, round(args.seconds))), "-shape", f"[{','.join(map(str, shape))}]",
             *(["-infer_precision", infer_precision] if infer_precision else [])]
    cmd = [*benchmark_app_command(), *flags]
    proc, load = measure_under_load(lambda: subprocess.run(cmd, capture_output=True, text=True, check=False))
    text = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark_app failed: {text.strip().splitlines()[-1:]}")

    def number(pattern: str) -> float | None:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else None

    median = re.search(r"Median:\s+([\d.]+) (ms|us)", text)  # a tiny model's latency is printed in us
    return {"median_ms": float(median.group(1)) / (1000.0 if median.group(2) == "us" else 1.0) if median else None, "fps": number(r"Throughput:\s+([\d.]+) FPS"),
            "runs": int(number(r"Count:\s+(\d+) iterations") or 0), "streams": int(number(r"NUM_STREAMS: (\d+)") or 0),
            "requests": int(number(r"(\d+) inference requests") or 0),
            "threads": int(number(r"INFERENCE_NUM_THREADS: (\d+)") or 0),
            "precision": (re.findall(r"INFERENCE_PRECISION_HINT: <Type: '(\w+)'>", text) or [None])[0],
            "command": "benchmark_app " + " ".join(flags),
            "load": load.to_dict()}


# --- runners ----------------------------------------------------------------------------------

def raw_ort(runner: Any) -> Callable[[np.ndarray], Any]:
    """A plain InferenceSession on the file the edgeres runner loaded, with the same options."""
    import onnxruntime as ort

    from edgeres.backends.onnxruntime import _session_options

    session = ort.InferenceSession(str(runner.path), _session_options(ort, runner.options), providers=["CPUExecutionProvider"],
                                   disabled_optimizers=runner.info["disabled_optimizers"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def torch_runner(depth: int, channels_last: bool) -> Callable[[np.ndarray], Any]:
    import torch

    from edgeres.models import ResNet

    torch.manual_seed(0)
    model = ResNet(depth).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    def run(x: np.ndarray) -> Any:
        t = torch.from_numpy(x)
        with torch.inference_mode():
            return model(t.contiguous(memory_format=torch.channels_last) if channels_last else t).numpy()

    return run


def latency(fn: Any, args: argparse.Namespace, min_runs: int | None = None) -> dict[str, Any]:
    from edgeres.validate import measure_latency

    r = measure_latency(fn, SHAPE, (1,), min_runs=min_runs or args.min_runs, min_seconds=args.seconds, warmup=5)[0]
    return {"p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "runs": r.iterations, "load": r.load}


def throughput(runner: Any, args: argparse.Namespace, batches: tuple[int, ...] = (1,)) -> dict[str, Any]:
    from edgeres.validate.throughput import measure_throughput

    t = measure_throughput(runner, SHAPE, batches, min_seconds=args.seconds)
    return {"fps": t.images_per_second, "runs": t.runs, "batch": t.batch, "streams": t.streams,
            "requests": t.requests, "threads": t.threads, "mode": t.mode, "all_busy_share": t.all_busy_share,
            "tried": t.tried, "load": t.load}


# --- the comparisons --------------------------------------------------------------------------

def _rounds(ours: Callable[[], dict[str, Any]], ref: Callable[[], dict[str, Any]], key: str,
            rounds: int) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Measure ours and the reference ``rounds`` times in alternating order (a load that drifts hits
    both alike); the figures are medians over rounds, the ratio the median of per-round ratios."""
    mine, theirs = [], []
    for i in range(rounds):
        if i % 2 == 0:
            mine.append(ours())
            theirs.append(ref())
        else:
            theirs.append(ref())
            mine.append(ours())
    ratios = [m[key] / t[key] for m, t in zip(mine, theirs)]
    return _merge(mine, key), _merge(theirs, key), float(np.median(ratios))


def _as_p50(result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "p50_ms": result["median_ms"]}


def _merge(results: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """One figure from several rounds: the median value, every run counted, the busiest load."""
    load = max((r["load"] for r in results), key=lambda x: (x.get("during") or {}).get("others_cpus") or 0)
    return {**results[0], key: float(np.median([r[key] for r in results])),
            "runs": sum(r["runs"] for r in results), "load": load, "rounds": results}


def compare_openvino(key: str, xml: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    from edgeres.backends import Artifact, get_backend

    runner = get_backend("openvino").load(Artifact.load(xml))
    hint = runner.info["inference_precision_hint"]
    executed = runner.info["execution_precision"]
    log(f"{key}: edgeres latency and benchmark_app -hint latency, then edgeres throughput and benchmark_app "
        f"-hint throughput, {args.rounds} round(s) each")
    ours_lat, ref_lat, lat_ratio = _rounds(lambda: latency(runner, args),
                                           lambda: _as_p50(benchmark_app(xml, "latency", args, hint)), "p50_ms",
                                           args.rounds)
    ours_tput, ref_tput, tput_ratio = _rounds(lambda: throughput(runner, args),
                                              lambda: benchmark_app(xml, "throughput", args, hint), "fps", args.rounds)
    common = {"config": key, "executed": executed, "infer_precision": hint}
    return [
        {**common, "what": "latency p50 ms, batch 1", "edgeres": ours_lat["p50_ms"], "reference": ref_lat["p50_ms"],
         "reference_name": "benchmark_app -hint latency (median)", "ratio": lat_ratio,
         "bar": ("<=", BARS["latency_vs_benchmark_app"]), "edgeres_detail": ours_lat, "reference_detail": ref_lat},
        {**common, "what": "throughput img/s, batch 1", "edgeres": ours_tput["fps"], "reference": ref_tput["fps"],
         "reference_name": "benchmark_app -hint throughput", "ratio": tput_ratio,
         "bar": (">=", BARS["throughput_vs_benchmark_app"]), "edgeres_detail": ours_tput,
         "reference_detail": ref_tput},
    ]


def compare_onnxruntime(key: str, path: Path, args: argparse.Namespace) -> dict[str, Any]:
    from edgeres.backends import Artifact, get_backend

    runner = get_backend("onnxruntime").load(Artifact.load(path))
    raw = raw_ort(runner)
    log(f"{key}: edgeres ONNX Runtime runner vs a raw InferenceSession, {args.rounds} round(s)")
    ours, ref, ratio = _rounds(lambda: latency(runner, args), lambda: latency(raw, args), "p50_ms", args.rounds)
    log(f"{key}: edgeres throughput, the best of batch {' and '.join(map(str, ORT_BATCHES))} x thread splits")
    best = throughput(runner, args, ORT_BATCHES)
    return {"config": key, "executed": runner.info.get("execution_precision", runner.info["precision"]),
            "what": "latency p50 ms, batch 1", "edgeres": ours["p50_ms"], "reference": ref["p50_ms"],
            "reference_name": "raw onnxruntime.InferenceSession", "ratio": ratio,
            "bar": ("<=", BARS["latency_vs_benchmark_app"]), "edgeres_detail": ours, "reference_detail": ref,
            "throughput": best}


def int8_peak_row(rows: list[dict[str, Any]], depth: int) -> dict[str, Any] | None:
    """Achieved INT8 MAC/s of the OpenVINO INT8 IR at batch 1 over the CPU's INT8 peak. The peak is
    counted at the cores' maximum clock (cpufreq) or, where that is unreadable, at the clock they
    were measured running at; only where neither is known is it the nominal clock, which makes the
    fraction an upper estimate (the family's top boost clock, where known, gives the low end)."""
    from edgeres.models import ResNet, summarize

    peak = hostinfo.int8_peak()
    lat = next((r for r in rows if r["config"] == "ov-int8" and r["what"].startswith("latency")), None)
    if peak is None or lat is None:
        return None
    macs = summarize(ResNet(depth)).macs
    achieved = macs / (lat["edgeres"] / 1000.0)
    fraction = achieved / float(peak["macs_per_second"])
    low = achieved / float(peak["peak_at_top_boost"]) if peak["peak_at_top_boost"] else None
    bar = BARS["int8_peak_fraction"]
    if fraction > 1.0:
        verdict = "undecided (over 100% of the peak: the clock or MACs/cycle behind it is undercounted)"
    elif fraction < bar:
        verdict = "NOT met"
    elif peak["clock_source"] in ("max", "measured") or (low is not None and low >= bar):
        verdict = "met"
    else:
        verdict = "undecided (met only at the nominal clock; the boost clock is unreadable)"
    return {"macs_per_image": macs, "p50_ms": lat["edgeres"], "achieved_macs_per_second": achieved,
            "peak": peak, "fraction": fraction, "fraction_at_top_boost": low, "verdict": verdict,
            "formula": (f"{macs / 1e9:.2f} GMAC / {lat['edgeres']:.2f} ms = {achieved / 1e9:.0f} GMAC/s; peak "
                        f"{peak['formula']}")}


# --- output -----------------------------------------------------------------------------------

def _load_text(load: dict[str, Any]) -> str:
    during = load.get("during") or {}
    text = f"{during.get('others_cpus', '?')}"
    return text + (" BUSY" if load.get("busy") else "")


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [(f"# CPU benchmark: ResNet-{report['depth']}, batch 1, {env['cpu']['cpu']}, "
              f"{env['cpu']['logical_cpus']} CPUs"), "",
             (f"- instruction sets: {', '.join(env['cpu']['instruction_sets'])}; "
              + "; ".join(env["cpu"]["precision_notes"])),
             (f"- load average at start {env['loadavg_start']}, at end {env['loadavg_end']}; each figure: at least "
             f"{report['min_runs']} runs and {report['seconds']} s, in {report.get('rounds', 1)} round(s) of "
             "alternating order (figures: median over rounds; ratio: median of per-round ratios; n: all rounds); "
             "'others' = CPUs' worth of time other processes used while it was measured, busiest round (BUSY = "
             "over 10% of the machine)"), "",
             "| config | executed | figure | edgeres | n | reference | ref n | ratio | bar | others (ours / ref) |",
             "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | --- | --- |"]
    for r in report["rows"]:
        op, bar = r["bar"]
        ok = r["ratio"] <= bar if op == "<=" else r["ratio"] >= bar
        ref_value = f"{r['reference']:.2f} ({r['reference_name']})"
        lines.append(f"| {r['config']} | {r['executed']} | {r['what']} | {r['edgeres']:.2f} | "
                     f"{r['edgeres_detail']['runs']} | {ref_value} | {r['reference_detail']['runs']} | "
                     f"{r['ratio']:.3f} | {op} {bar} {'met' if ok else 'NOT met'} | "
                     f"{_load_text(r['edgeres_detail']['load'])} / {_load_text(r['reference_detail']['load'])} |")
    lines += ["", "| framework baseline | p50 ms | n | others |", "| --- | ---: | ---: | --- |"]
    for name, b in report["baselines"].items():
        lines.append(f"| {name} | {b['p50_ms']:.2f} | {b['runs']} | {_load_text(b['load'])} |")
    tput = [r for r in report["rows"] if r["what"].startswith("throughput")]
    if tput:
        lines += ["", "Throughput modes: " + "; ".join(
            f"{r['config']}: edgeres {r['edgeres_detail']['mode']}, {r['edgeres_detail']['streams']} streams, "
            f"{r['edgeres_detail']['requests']} requests (all busy after "
            f"{100 * r['edgeres_detail']['all_busy_share']:.0f}% of submissions), "
            f"{r['edgeres_detail']['threads']} threads vs benchmark_app {r['reference_detail']['streams']} streams, "
            f"{r['reference_detail']['requests']} requests" for r in tput)]
    ort = [r for r in report["rows"] if r.get("throughput")]
    if ort:
        lines += ["", "| ONNX Runtime throughput (no bar) | img/s | batch | requests x threads | n | tried (img/s) |",
                  "| --- | ---: | ---: | --- | ---: | --- |"]
        for r in ort:
            t = r["throughput"]
            tried = ", ".join(f"b{x['batch']} {x['requests']}x{x['threads']}: {x['images_per_second']:.1f}"
                              for x in t["tried"])
            lines.append(f"| {r['config']} | {t['fps']:.1f} | {t['batch']} | {t['requests']} x {t['threads']} | "
                         f"{t['runs']} | {tried} |")
    peak = report.get("int8_peak")
    if peak:
        low = peak["fraction_at_top_boost"]
        span = "" if low is None else (f" ({100 * low:.0f}% at the family's top boost clock, "
                                       f"{peak['peak']['top_boost_mhz']:.0f} MHz)")
        lines += ["", (f"INT8 batch 1 at {100 * peak['fraction']:.0f}% of the CPU's INT8 peak{span} "
                       f"(bar >= {100 * BARS['int8_peak_fraction']:.0f}%: {peak['verdict']}): {peak['formula']}. "
                       f"Assumptions: {peak['peak']['assumptions']}")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=50, help="ResNet depth (default 50)")
    ap.add_argument("--min-runs", type=int, default=100, help="at least this many runs per figure (default 100)")
    ap.add_argument("--seconds", type=float, default=5.0, help="and at least this long per figure (default 5)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="measure each pair this many times in alternating order (default 2)")
    ap.add_argument("--baseline-runs", type=int, default=30,
                    help="PyTorch eager is no bar, only a reference: at least this many runs (default 30)")
    ap.add_argument("--ov-precisions", default="fp32,bf16,int8", help="OpenVINO precisions (default fp32,bf16,int8)")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="S", help="wait up to S seconds for a quiet CPU")
    ap.add_argument("--out", default="bench-out", help="output folder (default bench-out/)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cpu = hostinfo.describe_cpu()
    wanted = [p for p in args.ov_precisions.split(",") if p]
    if "bf16" in wanted and "AVX-512 BF16" not in cpu["instruction_sets"] and "AMX-BF16" not in cpu["instruction_sets"]:
        wanted.remove("bf16")
        log("bf16 skipped: the CPU reports no BF16 instructions")
    # built in a child process: the timing process then holds only the runners, as benchmark_app's does
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
        paths = child.submit(_build_quietly, args.depth, out, wanted).result()
    if args.wait_quiet:
        log(f"waiting up to {args.wait_quiet:g} s for a quiet CPU: {sample_load().describe()}")
        log(f"  now: {wait_for_quiet(args.wait_quiet).describe()}")
    start_load = loadavg()
    rows: list[dict[str, Any]] = []
    for key in [f"ov-{p}" for p in wanted]:
        rows += compare_openvino(key, paths[key], args)
    for key in ("ort-fp32", "ort-int8"):
        rows.append(compare_onnxruntime(key, paths[key], args))
    baselines = {}
    for name, channels_last in (("PyTorch eager fp32 NCHW", False), ("PyTorch eager fp32 channels_last", True)):
        log(f"{name}")
        baselines[name] = latency(torch_runner(args.depth, channels_last), args, args.baseline_runs)
    report = {"depth": args.depth, "min_runs": args.min_runs, "seconds": args.seconds, "rounds": args.rounds,
              "rows": rows,
              "baselines": baselines, "int8_peak": int8_peak_row(rows, args.depth),
              "environment": {"cpu": cpu, "loadavg_start": start_load, "loadavg_end": loadavg(),
                              "versions": _versions(), "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}}
    (out / "bench_cpu.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    md = markdown(report)
    (out / "bench_cpu.md").write_text(md)
    print(md)
    log(f"wrote {out / 'bench_cpu.json'} and {out / 'bench_cpu.md'}")
    return 0


def _versions() -> dict[str, str | None]:
    from edgeres.optional import version_of

    return {name: version_of(name) for name in ("openvino", "onnxruntime", "torch", "nncf")}


if __name__ == "__main__":
    raise SystemExit(main())
