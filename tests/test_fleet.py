"""edgeres fleet on a local multi-node Ray cluster: two intel-cpu devices, a cpu device that joins
with `edgeres fleet join`, a jetson-orin device on the fake TensorRT; `fleet run` end to end, then a
device killed mid-run. Marked `fleet`; skipped where Ray is not installed."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster

from edgeres.cli import main
from edgeres.fleet.preflight import SLOT, DeviceInfo, preflight

pytestmark = pytest.mark.fleet
ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
SIZE = 32
BUILD = ["--depth", "18", "--input-size", str(SIZE), "--num-classes", "10", "--calib-size", "8",
         "--precision", "fp32,int8", "--bench-seconds", "0.2", "--iterations", "3", "--seconds", "0.1", "--warmup", "1"]

# Every node's object store is sized here, not from the host's free memory. CI hosts run with their disks over
# Ray's 95% "disk full" line, where Ray refuses any object its store cannot hold in memory; this cluster is one
# host pretending to be several, so that guard is lifted (edgeres's own message for it is in test_fleet_parts).
STORE = 256 * 2**20
HEAD = {"num_cpus": 1, "include_dashboard": False, "object_store_memory": 2 * STORE,
        "_system_config": {"local_fs_capacity_threshold": 1.0}}

# `import tensorrt` on the fake Jetson: the fake module of trt_fakes, and a fake CUDA runtime.
FAKE_TENSORRT = f"""
import os, sys, time
from trt_fakes import FakeCuda, make_tensorrt

fake = make_tensorrt("10.3.0.30", input_shape=(-1, 3, {SIZE}, {SIZE}), classes=10)
delay = float(os.environ.get("FAKE_TRT_BUILD_DELAY", "0"))
if delay:  # a device that is still building when the test kills it
    build = fake.Builder.build_serialized_network
    fake.Builder.build_serialized_network = lambda self, *a: (time.sleep(delay), build(self, *a))[1]
sys.modules[__name__] = fake
import edgeres.backends.tensorrt_cuda as cuda
cuda.cuda_runtime = lambda: FakeCuda(cc=(8, 7))
"""


def _jetson(name: str) -> DeviceInfo:
    return DeviceInfo(name=name, target="jetson-orin", backend="tensorrt", model="Orin",
                      backends={"tensorrt": "10.3.0.30"}, cpu="Cortex-A78AE", cpu_flags=[], threads=1,
                      power={"power_mode": "MAXN"})


def _env(shim: Path | None = None, **extra: str) -> dict[str, str]:
    paths = [str(shim)] if shim else []
    return {"PYTHONPATH": os.pathsep.join([*paths, str(ROOT), str(TESTS)]), **extra}


def _wait_for(address: str, n: int, seconds: float = 90) -> None:
    from edgeres.fleet.cluster import connect, devices

    connect(address)
    try:
        deadline = time.monotonic() + seconds
        while sum(d.alive for d in devices(ray)) < n:
            assert time.monotonic() < deadline, f"{n} devices did not join within {seconds} s"
            time.sleep(0.5)
    finally:
        ray.shutdown()


def _reread_ray_config() -> None:
    """Ray reads RAY_AUTH_MODE once per process; this test process imported Ray before setting it
    (a user's shell sets it before Python starts), so Ray's config is read again, as ray.init does."""
    from ray._raylet import Config

    Config.initialize("")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    shim = tmp / "fake-trt"
    (shim / "tensorrt").mkdir(parents=True)
    (shim / "tensorrt" / "__init__.py").write_text(FAKE_TENSORRT)
    # Ray's token authentication, as the README tells users to set it: every process of the cluster has it
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    _reread_ray_config()
    cluster = Cluster(initialize_head=True, head_node_args=HEAD)
    nodes = {}
    for name in ("intel-1", "intel-2"):
        nodes[name] = cluster.add_node(wait=False, num_cpus=1, labels=preflight("intel-cpu", name).labels(),
                                       resources={SLOT: 1}, env_vars=_env(), object_store_memory=STORE)
    nodes["jetson-1"] = cluster.add_node(wait=False, num_cpus=1, labels=_jetson("jetson-1").labels(),
                                         resources={SLOT: 1}, env_vars=_env(shim), object_store_memory=STORE)
    # the cpu device joins the way a user's device does
    join = subprocess.Popen([sys.executable, "-m", "edgeres.cli", "fleet", "join", "--address", cluster.address,
                             "--target", "cpu", "--name", "cpu-1"], env={**os.environ, **_env()},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(cluster.address, 4)
        yield {"cluster": cluster, "nodes": nodes, "shim": shim, "out": tmp / "out"}
    finally:
        os.killpg(join.pid, signal.SIGTERM)
        join.wait(timeout=60)
        cluster.shutdown()
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.update({key: value})
        _reread_ray_config()


def test_fleet_run_measures_every_device_and_merges_one_report(fleet, capsys):
    assert main(["fleet", "devices", "--address", fleet["cluster"].address]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["device", "target", "model"]
    assert all(name in table for name in ("intel-1", "intel-2", "cpu-1", "jetson-1")) and "jetson-orin" in table
    start = time.perf_counter()
    rc = main(["fleet", "run", "--address", fleet["cluster"].address, "--target", "intel-cpu,cpu,jetson",
               *BUILD, "--out", str(fleet["out"]), "--json"])
    seconds = time.perf_counter() - start
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert rc == 0, captured.err
    assert {d["device"]: d["status"] for d in result["devices"]} == {
        "intel-1": "ok", "intel-2": "ok", "cpu-1": "ok", "jetson-1": "ok"}
    assert {t: p["kind"] for t, p in result["payloads"].items()} == {
        "intel-cpu": "bundles", "cpu": "bundles", "jetson-orin": "kit"}
    report = json.loads((fleet["out"] / "report.json").read_text())
    rows = {(r["source"], r["precision"]): r for r in report["rows"]}
    expected = {(d, p) for d in ("intel-1", "intel-2", "cpu-1") for p in ("fp32", "int8")}
    expected |= {("jetson-1", p) for p in ("fp32", "int8")}
    assert set(rows) == expected
    for row in rows.values():
        assert row["p50_ms"] > 0 and row["agreement"] is not None and row["extra"]["device_state"]
    assert rows[("intel-1", "fp32")]["backend"] == "openvino" and rows[("cpu-1", "int8")]["backend"] == "onnxruntime"
    assert rows[("jetson-1", "int8")]["backend"] == "tensorrt"
    assert rows[("intel-1", "fp32")]["agreement"] == 1.0       # the device runs the host's FP32 model
    labels = {s["label"]: s for s in report["merged_from"]}
    assert set(labels) == {"intel-1", "intel-2", "cpu-1", "jetson-1"}
    assert labels["jetson-1"]["environment"]["backends"]["tensorrt"] == "10.3.0.30"
    assert labels["intel-2"]["environment"]["state"]["threads"] >= 1
    assert any("same state" in n for n in report["notes"])
    assert result["auth"] == "token" and not any("authentication is off" in n for n in report["notes"])
    md = (fleet["out"] / "report.md").read_text()
    assert "### jetson-1" in md and "| intel-2 |" in md
    assert "[4/4 devices]" in captured.err  # progress goes to stderr
    print(f"{captured.err}\nfleet run, 4 devices, 3 targets: {seconds:.1f} s", file=sys.stderr)


def test_a_device_killed_mid_run_is_reported_and_the_others_complete(fleet, capsys):
    cluster, shim = fleet["cluster"], fleet["shim"]
    victim = cluster.add_node(num_cpus=1, labels=_jetson("jetson-2").labels(), resources={SLOT: 1},
                              object_store_memory=STORE, env_vars=_env(shim, FAKE_TRT_BUILD_DELAY="120"))
    _wait_for(cluster.address, 5)
    from edgeres.build_request import BuildRequest
    from edgeres.fleet.executor import FleetRequest, run_fleet

    finished: list[str] = []

    def kill_when_the_others_are_done(run):
        finished.append(run.label)
        if len(finished) == 2:   # jetson-1 and cpu-1 answered; jetson-2 is still building
            threading.Thread(target=cluster.remove_node, args=(victim, False), daemon=True).start()

    req = FleetRequest(address=cluster.address, targets=["jetson-orin", "cpu"],
                       build=BuildRequest(target="cpu", depth=18, input_size=SIZE, num_classes=10, calib_size=8,
                                          precisions=["fp32", "int8"], bench_seconds=0.2),
                       out=fleet["out"].with_name("out-kill"), build_dir=fleet["out"] / "build", timeout=100,
                       iterations=3, seconds=0.1, warmup=1)
    result = run_fleet(req, on_result=kill_when_the_others_are_done)
    from edgeres.cli.fleet import fleet_text

    print("\n" + fleet_text(result), file=sys.stderr)
    status = {r.label: (r.status, r.reason) for r in result.runs}
    print("\n" + json.dumps(status, indent=1), file=sys.stderr)
    assert status["jetson-2"][0] == "dead", status
    assert status["jetson-1"][0] == "ok" and status["cpu-1"][0] == "ok"
    assert status["jetson-1 (retry for jetson-2)"][0] == "ok"
    report = json.loads((req.out / "report.json").read_text())
    by_source = {}
    for row in report["rows"]:
        by_source.setdefault(row["source"], set()).add(row["precision"])
    assert by_source == {"jetson-1": {"fp32", "int8"}, "cpu-1": {"fp32", "int8"},
                         "jetson-1 (retry for jetson-2)": {"fp32", "int8"}}
    assert any(n.startswith("device jetson-2 (jetson-orin): dead") and "retried on jetson-1" in n
               for n in report["notes"])
    fleet_json = json.loads((req.out / "fleet.json").read_text())
    assert {d["device"]: d["status"] for d in fleet_json["devices"]}["jetson-2"] == "dead"
