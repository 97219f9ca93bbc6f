"""``edgeres fleet run``: build once per target, one Ray task per matching device, one merged report.

Each task is pinned to its device's node and holds the device's one ``edgeres-device``
slot, so two measurements never share a device; Ray's own task retries are off, because a
retry here means another device of the same kind, chosen by this module (once). A device
that dies, hangs past the timeout or fails its preflight is reported with its reason; the
others' rows are complete. Ctrl-C cancels what is still running and writes the partial report.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres.errors import EdgeresError
from edgeres.fleet.cluster import Device, auth_mode, auth_note, connect, devices
from edgeres.fleet.merge import DeviceRun, merge_fleet
from edgeres.fleet.payload import Payload, build_payload
from edgeres.fleet.preflight import SLOT
from edgeres.fleet.worker import measure_on_device


class FleetInterrupted(EdgeresError):
    exit_code = 130


@dataclass
class FleetRequest:
    address: str
    targets: list[str]
    build: Any                      # a build_request.BuildRequest; its target and out_dir are set per target
    out: Path
    timeout: float = 600.0          # seconds a device may take, from when its task is sent
    iterations: int = 50            # each latency figure: at least this many runs ...
    seconds: float = 2.0            # ... and at least this long
    warmup: int = 10
    batch_sizes: list[int] = field(default_factory=lambda: [1])
    build_dir: Path | None = None   # where the host builds go (default OUT/build): runs that share it reuse builds

    @property
    def builds(self) -> Path:
        return self.build_dir or self.out / "build"


@dataclass
class FleetResult:
    runs: list[DeviceRun]
    payloads: dict[str, Payload]
    report: Any
    seconds: float
    out: Path

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "seconds": round(self.seconds, 1), "auth": auth_mode(),
                "devices": [r.to_dict() for r in self.runs],
                "payloads": {t: p.to_dict() for t, p in self.payloads.items()},
                "report": str(self.out / "report.json") if self.report else None}


def select_devices(found: list[Device], targets: list[str]) -> dict[str, list[Device]]:
    """The joined devices of each target (by the target's canonical name); refuses a target without one."""
    from edgeres.targets import get_target

    chosen: dict[str, list[Device]] = {}
    for name in targets:
        target = get_target(name).name
        chosen[target] = [d for d in found if d.target == target and d.alive]
        if not chosen[target]:
            have = sorted({d.target for d in found if d.alive}) or ["none"]
            raise EdgeresError(f"no device of target {target} has joined the cluster (targets present: "
                               f"{', '.join(have)}); on such a device run: edgeres fleet join --address ...")
    return chosen


def run_fleet(req: FleetRequest, log: Callable[[str], None] | None = None,
              on_result: Callable[[DeviceRun], None] | None = None) -> FleetResult:
    """See the module docstring. ``on_result`` is called as each device finishes (tests use it)."""
    say = log or (lambda msg: print(msg, file=sys.stderr))
    start = time.perf_counter()
    ray = connect(req.address)
    try:
        note = auth_note()
        if note:
            say(f"warning: {note}")
        chosen = select_devices(devices(ray), req.targets)
        payloads: dict[str, Payload] = {}
        for target in chosen:
            say(f"building for {target} on this host ...")
            build = dataclasses.replace(req.build, target=target, out_dir=req.builds / target)
            payloads[target] = build_payload(build)
        tasks = _Tasks(ray, req, payloads, say, on_result)
        runs = tasks.run(chosen)
        interrupted = tasks.interrupted
    finally:
        ray.shutdown()
    seconds = time.perf_counter() - start
    model = next(iter(payloads.values()), None)
    extra = {"seconds": round(seconds, 1), "auth": auth_mode(), "targets": list(chosen),
             "payloads": {t: p.to_dict() for t, p in payloads.items()},
             "notes": [n for n in [auth_note(), "interrupted: the devices still running were cancelled"
                                   if interrupted else None] if n]}
    report = merge_fleet(runs, req.out, title=f"edgeres fleet: {', '.join(chosen)}",
                         model=_model_of(req.builds, model), extra=extra)
    result = FleetResult(runs=runs, payloads=payloads, report=report, seconds=seconds, out=req.out)
    if interrupted:
        raise FleetInterrupted(f"interrupted: {sum(r.status == 'cancelled' for r in runs)} device(s) cancelled; "
                               f"the partial report is in {req.out}")
    return result


def _model_of(builds: Path, payload: Payload | None) -> dict[str, Any]:
    if payload is None:
        return {}
    path = builds / payload.target / "report.json"
    try:
        return dict(json.loads(path.read_text()).get("model") or {})
    except (OSError, ValueError):
        return {}


def put_payload(ray: Any, payload: Payload) -> Any:
    """Hand a payload to Ray's object store once, for every device of its target. A store that is
    full, on a host whose disk Ray deems full (over 95% by default), is the user's to fix: say so."""
    try:
        return ray.put(payload.tarball.read_bytes())
    except (ray.exceptions.ObjectStoreFullError, ray.exceptions.OutOfDiskError) as exc:
        raise EdgeresError(
            f"Ray could not hold the {payload.target} payload ({payload.size / 1e6:.1f} MB) on this host: "
            f"{_first_line(exc).rstrip('.')}. "
            "Free disk space here (Ray refuses to spill once its disk is over 95% full), or start the head "
            "node with a larger --object-store-memory") from None


class _Tasks:
    """The tasks in flight: submit, wait, time out, retry once elsewhere, cancel on Ctrl-C."""

    def __init__(self, ray: Any, req: FleetRequest, payloads: dict[str, Payload], say: Callable[[str], None],
                 on_result: Callable[[DeviceRun], None] | None) -> None:
        self.ray, self.req, self.say, self.on_result = ray, req, say, on_result
        self.remote = ray.remote(measure_on_device)
        self.data = {t: put_payload(ray, p) for t, p in payloads.items()}
        self.payloads = payloads
        self.pending: dict[Any, tuple[DeviceRun, Device, float]] = {}
        self.interrupted = False

    def submit(self, run: DeviceRun, device: Device) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        payload = self.payloads[run.target]
        settings = {"target": run.target, "kind": payload.kind, "device": device.name,
                    "iterations": self.req.iterations, "seconds": self.req.seconds, "warmup": self.req.warmup,
                    "batch_sizes": self.req.batch_sizes}
        ref = self.remote.options(
            resources={SLOT: 1}, num_cpus=0, max_retries=0, retry_exceptions=False,
            label_selector={"edgeres/target": device.labels.get("edgeres/target", run.target)},
            scheduling_strategy=NodeAffinitySchedulingStrategy(device.node_id, soft=False),
        ).remote(self.data[run.target], payload.sha256, json.dumps(settings))
        self.pending[ref] = (run, device, time.monotonic())

    def run(self, chosen: dict[str, list[Device]]) -> list[DeviceRun]:
        runs: list[DeviceRun] = []
        for target, devs in chosen.items():
            for device in devs:
                run = DeviceRun(device.name, target, device.model)
                runs.append(run)
                self.submit(run, device)
        total, done = len(runs), 0
        self.say(f"measuring on {total} device(s): {', '.join(r.name for r in runs)}")
        try:
            while self.pending:
                ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    run, device, sent = self.pending.pop(ref)
                    self._finish(ref, run, sent)
                    retry = self._retry(run, device, chosen[run.target], runs)
                    if retry is not None:
                        runs.append(retry)
                        total += 1
                    done += 1
                    self._progress(done, total, run)
                self._time_out()
        except KeyboardInterrupt:
            self.interrupted = True
            for ref, (run, _device, _sent) in self.pending.items():
                self.ray.cancel(ref, force=True)
                run.status, run.reason = "cancelled", "the fleet run was interrupted (Ctrl-C)"
            self.pending.clear()
        return runs

    def _finish(self, ref: Any, run: DeviceRun, sent: float) -> None:
        run.seconds = round(time.monotonic() - sent, 1)
        if run.status == "hung":
            return
        try:
            answer = json.loads(self.ray.get(ref))
        except self.ray.exceptions.RayTaskError as exc:  # the task raised on the device
            run.status, run.reason = "failed", _first_line(exc.cause if exc.cause is not None else exc)
            return
        except self.ray.exceptions.RayError as exc:  # the worker or its node went away
            run.status, run.reason = "dead", f"{type(exc).__name__}: {_first_line(exc).split('. ')[0]}"
            return
        run.answer = answer
        run.status = answer.get("status", "failed")
        run.reason = answer.get("reason")

    def _time_out(self) -> None:
        now = time.monotonic()
        for ref, (run, device, sent) in list(self.pending.items()):
            if now - sent > self.req.timeout:
                self.ray.cancel(ref, force=True)
                run.status, run.reason = "hung", f"no answer within {self.req.timeout:g} s (--timeout); cancelled"
                # the cancelled ref resolves to an error; ``_finish`` keeps the "hung" reason

    def _retry(self, run: DeviceRun, device: Device, same_kind: list[Device], runs: list[DeviceRun]) -> DeviceRun | None:
        """Once, on another device of the same kind that has not failed in this run."""
        if run.status == "ok" or run.retry_of is not None:
            return None
        failed = {r.name for r in runs if r.status not in ("ok", "pending")}
        others = [d for d in same_kind if d.name != device.name and d.name not in failed]
        others.sort(key=lambda d: d.model != device.model)  # the same model first
        if not others:
            return None
        retry = DeviceRun(others[0].name, run.target, others[0].model, retry_of=run.name)
        run.retried_on = others[0].name
        self.say(f"retrying {run.name}'s measurement on {others[0].name}")
        self.submit(retry, others[0])
        return retry

    def _progress(self, done: int, total: int, run: DeviceRun) -> None:
        rows = len(run.answer.get("rows") or [])
        what = f"{rows} rows" if run.status == "ok" else f"{run.status}: {run.reason}"
        self.say(f"[{done}/{total} devices] {run.label} ({run.target}): {what} in {run.seconds} s")
        if self.on_result:
            self.on_result(run)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if isinstance(exc, EdgeresError) or not lines else lines[0].strip()
