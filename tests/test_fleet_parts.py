"""edgeres fleet's parts without a cluster: the device task on a payload, checksums, preflight
failures, device states in the merged report, Ctrl-C, labels, and the message without Ray."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_bundle_support import CLASSES, PREPROCESS, tiny_artifact

from edgeres.cli import main
from edgeres.fleet.merge import DeviceRun, merge_fleet
from edgeres.fleet.payload import pack_bundles
from edgeres.fleet.preflight import DeviceInfo, label_value
from edgeres.fleet.worker import measure_on_device
from edgeres.targets import get_target

SETTINGS = {"target": "cpu", "kind": "bundles", "device": "dev-1", "iterations": 2, "seconds": 0.05, "warmup": 0}


@pytest.fixture
def payload(tmp_path):
    pytest.importorskip("onnxruntime")
    artifact = tiny_artifact(tmp_path / "build", target="cpu")
    x = np.random.default_rng(0).standard_normal((6, 3, 32, 32)).astype(np.float32)
    from edgeres.backends import get_backend

    reference = get_backend("onnxruntime").load(artifact)(x)
    tarball = pack_bundles(tmp_path / "fleet-cpu", get_target("cpu"), {"fp32": artifact},
                           model={"depth": 18, "num_classes": 10}, preprocess=PREPROCESS, classes=CLASSES,
                           validation=(x, reference.argmax(1), reference))
    import hashlib

    data = tarball.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def test_device_task_verifies_and_measures_a_payload(payload):
    data, sha = payload
    answer = json.loads(measure_on_device(data, sha, json.dumps(SETTINGS)))
    assert answer["status"] == "ok", answer
    (row,) = answer["rows"]
    assert row["precision"] == "fp32" and row["backend"] == "onnxruntime" and row["target"] == "cpu"
    assert row["agreement"] == 1.0 and row["top1"] == 1.0 and row["p50_ms"] > 0 and row["extra"]["n_images"] == 6
    assert answer["device"]["name"] == "dev-1" and answer["timing"]["iterations"] == 2


def test_a_damaged_payload_is_refused_before_anything_runs(payload):
    data, sha = payload
    answer = json.loads(measure_on_device(data[:-10] + b"0" * 10, sha, json.dumps(SETTINGS)))
    assert answer["status"] == "failed" and "arrived damaged" in answer["reason"]


def test_a_device_that_cannot_run_its_target_fails_its_preflight(payload, monkeypatch):
    from edgeres.backends import tensorrt

    monkeypatch.setattr(tensorrt, "_load_tensorrt", lambda: (None, "tensorrt is not installed"))
    data, sha = payload
    answer = json.loads(measure_on_device(data, sha, json.dumps({**SETTINGS, "target": "jetson-orin"})))
    assert answer["status"] == "failed-preflight" and "tensorrt is not usable here" in answer["reason"]


def test_labels_are_valid_ray_labels():
    info = DeviceInfo(name="lab bench #3", target="intel-cpu", backend="openvino", model="Intel(R) Xeon(R) @ 2.1GHz",
                      backends={"openvino": "2026.4.1-22982-e213a147257-releases/2026/4"}, cpu="x", cpu_flags=[],
                      threads=4)
    labels = info.labels()
    assert labels["edgeres/device"] == "lab-bench-3" and labels["edgeres/target"] == "intel-cpu"
    assert label_value("x" * 80) == "x" * 63 and label_value("//") == "unknown"
    label_utils = pytest.importorskip("ray._private.label_utils")
    label_utils.validate_node_label_syntax(labels)


def _answer(name, threads, governor, precision_rows=("fp32", "int8")):
    rows = [{"target": "intel-cpu", "backend": "openvino", "precision": p, "p50_ms": 5.0, "agreement": 1.0,
             "threads": threads} for p in precision_rows]
    return {"status": "ok", "rows": rows, "timing": {"where": "device"}, "environment": {"cpu": "Xeon"},
            "device": {"name": name, "model": "Xeon", "threads": threads, "power": {"cpu_governor": governor}}}


def test_rows_from_different_device_states_are_marked_and_failures_reported(tmp_path):
    runs = [DeviceRun("a", "intel-cpu", "Xeon", status="ok", answer=_answer("a", 4, "performance")),
            DeviceRun("b", "intel-cpu", "Xeon", status="ok", answer=_answer("b", 4, "powersave")),
            DeviceRun("c", "intel-cpu", "Xeon", status="hung", reason="no answer within 60 s", retried_on="a")]
    report = merge_fleet(runs, tmp_path, title="t", model={}, extra={"notes": []})
    assert {(r.source, tuple(r.notes)) for r in report.rows} == {
        ("a", ("device state A",)), ("b", ("device state B",))}
    assert any("2 device states" in n and "cpu_governor=powersave" in n for n in report.notes)
    assert any(n.startswith("device c (intel-cpu): hung: no answer") and "retried on a" in n for n in report.notes)
    assert "device state B" in (tmp_path / "report.md").read_text()
    fleet = json.loads((tmp_path / "fleet.json").read_text())
    assert [d["status"] for d in fleet["devices"]] == ["ok", "ok", "hung"]
    assert (tmp_path / "devices" / "a" / "report.json").is_file()


class _FakeRay:
    """Enough of ``ray`` for the task loop: Ctrl-C arrives while it waits."""

    class exceptions:
        RayError = RuntimeError
        RayTaskError = RuntimeError

    def __init__(self):
        self.cancelled = []

    def put(self, data):
        return ("object", len(data))

    def remote(self, fn):
        fake = self

        class Remote:
            def options(self, **kw):
                assert kw["resources"] == {"edgeres-device": 1} and kw["max_retries"] == 0
                return self

            def remote(self, *args):
                return f"ref-{len(fake.cancelled)}-{id(args)}"
        return Remote()

    def wait(self, refs, num_returns, timeout):
        raise KeyboardInterrupt

    def cancel(self, ref, force):
        self.cancelled.append(ref)


def test_ctrl_c_cancels_every_running_device(tmp_path):
    from edgeres.fleet.cluster import Device
    from edgeres.fleet.executor import FleetRequest, _Tasks
    from edgeres.fleet.payload import Payload

    pytest.importorskip("ray")
    (tmp_path / "p.tar.gz").write_bytes(b"payload")
    payload = Payload("cpu", "bundles", tmp_path / "p.tar.gz", "0" * 64, 7, ["fp32"])
    fake = _FakeRay()
    tasks = _Tasks(fake, FleetRequest("h:1", ["cpu"], None, tmp_path), {"cpu": payload}, lambda m: None, None)
    devices = [Device(n, "cpu", "m", "onnxruntime", "1", True, True, "00" * 28, "h", {}) for n in ("d1", "d2")]
    runs = tasks.run({"cpu": devices})
    assert tasks.interrupted and len(fake.cancelled) == 2
    assert [(r.name, r.status) for r in runs] == [("d1", "cancelled"), ("d2", "cancelled")]
    merge_fleet(runs, tmp_path / "out", title="t", model={}, extra={})
    assert json.loads((tmp_path / "out" / "fleet.json").read_text())["report"] is None


def test_without_ray_fleet_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["fleet", "devices", "--address", "127.0.0.1:6379"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'edgeres[fleet]'" in err and len(err.strip().splitlines()) == 1
    assert main(["fleet", "join", "--address", "127.0.0.1:6379", "--dry-run"]) == 1
    assert "edgeres[fleet]" in capsys.readouterr().err


def test_join_dry_run_names_the_labels_and_the_ray_command(capsys):
    pytest.importorskip("ray")
    assert main(["fleet", "join", "--address", "10.0.0.1:6379", "--target", "cpu", "--name", "pi-4",
                 "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["labels"]["edgeres/target"] == "cpu" and out["labels"]["edgeres/device"] == "pi-4"
    assert "--address=10.0.0.1:6379" in out["command"] and '--resources={"edgeres-device": 1}' in out["command"]
    assert Path(out["command"][0]).name.startswith("python") and "--block" in out["command"]


class _HangingRay(_FakeRay):
    """The first device never answers; after the timeout its task is cancelled and resolves to an error."""

    class exceptions:
        class RayError(Exception):
            pass

        class RayTaskError(RayError):
            cause = None

    def __init__(self):
        super().__init__()
        self.sent = []
        self.answers = {}

    def remote(self, fn):
        fake = self

        class Remote:
            def options(self, **kw):
                self.node = kw["scheduling_strategy"].node_id
                return self

            def remote(self, data, sha, settings):
                ref = f"ref-{len(fake.sent)}"
                fake.sent.append((ref, json.loads(settings)["device"]))
                return ref
        return Remote()

    def wait(self, refs, num_returns, timeout):
        ready = [r for r in refs if r in self.cancelled or (r, "d2") in self.sent]
        if not ready:
            time.sleep(0.3)  # d1 says nothing
        return ready[:1], []

    def get(self, ref):
        if ref in self.cancelled:
            raise self.exceptions.RayError("task cancelled")
        device = dict(self.sent)[ref]
        return json.dumps({"status": "ok", "rows": [{"target": "cpu", "backend": "onnxruntime", "precision": "fp32"}],
                           "device": {"name": device}})


def test_a_hung_device_is_cancelled_and_its_measurement_retried_on_another(tmp_path):
    from edgeres.fleet.cluster import Device
    from edgeres.fleet.executor import FleetRequest, _Tasks
    from edgeres.fleet.payload import Payload

    pytest.importorskip("ray")
    (tmp_path / "p.tar.gz").write_bytes(b"payload")
    payload = Payload("cpu", "bundles", tmp_path / "p.tar.gz", "0" * 64, 7, ["fp32"])
    fake = _HangingRay()
    req = FleetRequest("h:1", ["cpu"], None, tmp_path, timeout=0.2)
    said = []
    tasks = _Tasks(fake, req, {"cpu": payload}, said.append, None)
    devices = [Device(n, "cpu", "m", "onnxruntime", "1", True, True, f"{i:056x}", "h", {})
               for i, n in enumerate(("d1", "d2"))]
    runs = tasks.run({"cpu": devices})
    status = {r.label: (r.status, r.reason) for r in runs}
    assert status["d2"][0] == "ok" and status["d1"][0] == "hung" and "no answer within 0.2 s" in status["d1"][1]
    assert status["d2 (retry for d1)"][0] == "ok" and fake.cancelled == ["ref-0"]
    assert any("[3/3 devices]" in s for s in said) and any("retrying d1's measurement on d2" in s for s in said)


def test_a_full_object_store_on_a_full_disk_is_one_clear_error(tmp_path):
    """Ray refuses a put when its store is full and the disk is over 95% used: the user is told what to free."""
    ray = pytest.importorskip("ray")
    from edgeres.errors import EdgeresError
    from edgeres.fleet.executor import put_payload
    from edgeres.fleet.payload import Payload

    class FullRay:
        exceptions = ray.exceptions

        def put(self, data):
            raise ray.exceptions.OutOfDiskError("Local disk is full\nThe object cannot be created because ...")

    (tmp_path / "p.tar.gz").write_bytes(b"x" * 2_500_000)
    payload = Payload("jetson-orin", "kit", tmp_path / "p.tar.gz", "0" * 64, 2_500_000, ["fp32"])
    with pytest.raises(EdgeresError, match=r"jetson-orin payload \(2.5 MB\) on this host: Local disk is full\. "
                                           r"Free disk space here .*--object-store-memory"):
        put_payload(FullRay(), payload)


def test_a_target_without_a_device_is_refused_before_anything_is_built():
    from edgeres.errors import EdgeresError
    from edgeres.fleet.cluster import Device
    from edgeres.fleet.executor import select_devices

    found = [Device("nuc", "intel-cpu", "m", "openvino", "1", True, True, "0" * 56, "h", {}),
             Device("orin", "jetson-orin", "m", "tensorrt", "1", True, False, "1" * 56, "h", {})]
    assert [d.name for d in select_devices(found, ["x86"])["intel-cpu"]] == ["nuc"]   # aliases resolve
    with pytest.raises(EdgeresError, match="no device of target jetson-orin has joined.*targets present: intel-cpu"):
        select_devices(found, ["intel-cpu", "jetson"])    # its only device is dead


def test_ctrl_c_during_fleet_run_writes_the_partial_report_and_exits_130(tmp_path, monkeypatch, capsys):
    """Through the CLI: one device answered, then Ctrl-C; the other is cancelled, the report keeps the answer."""
    pytest.importorskip("ray")
    from edgeres.fleet import executor
    from edgeres.fleet.cluster import Device
    from edgeres.fleet.payload import Payload

    (tmp_path / "p.tar.gz").write_bytes(b"payload")
    payload = Payload("intel-cpu", "bundles", tmp_path / "p.tar.gz", "0" * 64, 7, ["fp32", "int8"])

    class OneThenCtrlC(_HangingRay):
        def wait(self, refs, num_returns, timeout):
            if "ref-0" in refs:
                return ["ref-0"], []
            raise KeyboardInterrupt

        def get(self, ref):
            return json.dumps(_answer("a", 2, "performance"))

        def shutdown(self):
            pass

    fake = OneThenCtrlC()
    found = [Device(n, "intel-cpu", "Xeon", "openvino", "1", True, True, f"{i:056x}", "h", {})
             for i, n in enumerate(("a", "b"))]
    monkeypatch.setattr(executor, "connect", lambda address: fake)
    monkeypatch.setattr(executor, "devices", lambda ray: found)
    monkeypatch.setattr(executor, "build_payload", lambda request: payload)
    out = tmp_path / "out"
    rc = main(["fleet", "run", "--address", "h:1", "--target", "intel-cpu", "--depth", "18", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 130 and "interrupted: 1 device(s) cancelled; the partial report is in" in err
    assert fake.cancelled == ["ref-1"]
    report = json.loads((out / "report.json").read_text())
    assert {r["source"] for r in report["rows"]} == {"a"}
    assert any(n.startswith("device b (intel-cpu): cancelled") for n in report["notes"])
    assert any(n.startswith("interrupted") for n in report["notes"])


def test_join_refuses_a_device_that_cannot_run_its_target(monkeypatch, capsys):
    pytest.importorskip("ray")
    from edgeres.backends import tensorrt

    monkeypatch.setattr(tensorrt, "_load_tensorrt", lambda: (None, "tensorrt is not installed"))
    assert main(["fleet", "join", "--address", "10.0.0.1:6379", "--target", "jetson", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "this device cannot run target jetson-orin: tensorrt is not usable here" in err
