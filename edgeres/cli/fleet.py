"""``edgeres fleet join | devices | run``: parse, call ``edgeres.fleet``, print.

Everything here imports Ray lazily, so ``edgeres --help`` works without it and ``edgeres
fleet ...`` without it says what to install.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from edgeres import limits
from edgeres.argtypes import integer, number
from edgeres.cli.build import add_build_flags, build_request
from edgeres.cli.common import emit
from edgeres.errors import DEVICE_RUNS_FAILED


def add_fleet(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fleet", help="measure a model on many devices over Ray: join, devices, run",
                       description="A fleet of devices is a Ray cluster: each device joins as a labelled worker "
                       "node; 'fleet run' builds once per target, measures on every matching device and merges "
                       "one report. Needs: pip install 'edgeres[fleet]'.")
    fsub = p.add_subparsers(dest="fleet_command", metavar="FLEET_COMMAND")
    fsub.required = True
    j = fsub.add_parser("join", help="on a device: preflight, then join the cluster as a labelled worker node")
    j.add_argument("--address", required=True, help="the Ray head, HOST:PORT (ray start --head prints it)")
    j.add_argument("--target", default=None, help="this device's target (default: from its usable backends)")
    j.add_argument("--name", default=None, help="this device's name in reports (default: its hostname)")
    j.add_argument("--dry-run", action="store_true", help="print the preflight and the ray start command only")
    j.add_argument("--json", action="store_true", help="print the preflight as JSON")
    j.set_defaults(handler=_run_join)
    d = fsub.add_parser("devices", help="the devices that joined the cluster, with their labels")
    d.add_argument("--address", required=True, help="the Ray head, HOST:PORT")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(handler=_run_devices)
    r = fsub.add_parser("run", help="build once per target, measure on every matching device, merge one report")
    r.add_argument("--address", required=True, help="the Ray head, HOST:PORT")
    r.add_argument("--target", required=True, help="comma-separated targets, e.g. intel-cpu,jetson-orin")
    add_build_flags(r)
    r.add_argument("--iterations", type=integer(limits.COUNT), default=50,
                   help="each latency figure on a device: at least this many runs (default 50) ...")
    r.add_argument("--seconds", type=number(limits.SECONDS), default=2.0,
                   help="... and at least this many seconds (default 2)")
    r.add_argument("--warmup", type=integer(limits.WARMUP), default=10, help="untimed runs first (default 10)")
    r.add_argument("--batch", default="1", help="batch sizes timed on the devices, e.g. 1,8 (default 1)")
    r.add_argument("--batch-sizes", dest="batch", help=argparse.SUPPRESS)  # the old spelling, as bench's --batch
    r.add_argument("--timeout", type=number(limits.SECONDS), default=900.0,
                   help="seconds a device may take before it counts as hung (default 900)")
    r.add_argument("--out", default="out/fleet", help="output folder (default out/fleet)")
    r.add_argument("--build-dir", default=None, help="where the host builds go (default OUT/build); fleet runs "
                   "that share it reuse every finished build stage")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(handler=_run_fleet)


def _run_join(args: argparse.Namespace) -> int:
    from edgeres.fleet.cluster import join

    log = None if args.json else (lambda msg: print(msg, file=sys.stderr))
    info, argv, rc = join(args.address, args.target, args.name, dry_run=args.dry_run, log=log)
    if args.dry_run or args.json:
        text = (f"{info.name}: {info.target} on {info.model} ({info.backend} {info.backends.get(info.backend)})\n"
                f"labels: {info.labels()}\nstate: {info.state()}\nwould run: {' '.join(argv)}")
        emit(args, {**info.to_dict(), "labels": info.labels(), "command": argv}, text)
    return rc


def _run_devices(args: argparse.Namespace) -> int:
    from edgeres.fleet.cluster import connect, devices, devices_table

    ray = connect(args.address)
    try:
        found = devices(ray)
    finally:
        ray.shutdown()
    emit(args, {"devices": [d.to_dict() for d in found]}, devices_table(found))
    return 0


def _run_fleet(args: argparse.Namespace) -> int:
    from edgeres.errors import UsageError
    from edgeres.evaluate import parse_batches
    from edgeres.fleet import require_ray
    from edgeres.fleet.executor import FleetRequest, run_fleet

    require_ray()
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    if not targets:
        raise UsageError("--target names at least one target, e.g. --target intel-cpu,jetson-orin")
    req = FleetRequest(address=args.address, targets=targets, build=build_request(args, targets[0], None),
                       out=Path(args.out), timeout=args.timeout, iterations=args.iterations, seconds=args.seconds,
                       warmup=args.warmup,
                       batch_sizes=parse_batches(args.batch),
                       build_dir=Path(args.build_dir) if args.build_dir else None)
    with contextlib.redirect_stdout(sys.stderr):  # libraries' progress bars (NNCF) must not break --json
        result = run_fleet(req, log=lambda msg: print(msg, file=sys.stderr))
    emit(args, result.to_dict(), fleet_text(result))
    return 0 if all(r.status == "ok" for r in result.runs) else DEVICE_RUNS_FAILED


def fleet_text(result: Any) -> str:
    from edgeres.table import format_table

    rows = [(r.label, r.target, r.model, r.status, str(len(r.answer.get("rows") or [])),
             "-" if r.seconds is None else f"{r.seconds:.1f} s", r.reason or "") for r in result.runs]
    lines = [format_table(["device", "target", "model", "status", "rows", "time", "reason"], rows)]
    if result.report is not None:
        lines += ["", result.report.summary(), "", f"report: {result.out / 'report.md'}"]
    lines.append(f"{len(result.runs)} device run(s) in {result.seconds:.1f} s; details: {result.out / 'fleet.json'}")
    return "\n".join(lines)
