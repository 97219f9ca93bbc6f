"""`edgeres bench` on a busy machine: it waits out loud, keeps the quietest attempt, states every
figure's load, and fails on request (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from edgeres.cli import main
from edgeres.errors import BUSY
from edgeres.validate.latency import LatencyResult, format_latency
from edgeres.validate.quiet import latency_mode, load_line, quietest

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="load sampling reads /proc")


def _load(others: float, busy: bool) -> dict:
    sample = {"seconds": 1.0, "cpus": 2, "loadavg": [1.2, 1.0, 1.0], "others_cpus": others, "steal_share": 0.0,
              "busy": busy}
    return {"before": sample, "during": sample, "frequency": {}, "busy": busy,
            "warning": "busy machine during this measurement" if busy else None}


def _result(load: dict) -> LatencyResult:
    return LatencyResult(batch_size=1, iterations=5, warmup=1, mean_ms=1.0, std_ms=0.1, p50_ms=1.0, p90_ms=1.1,
                         p95_ms=1.2, p99_ms=None, min_ms=0.9, max_ms=1.3, throughput=1000.0, total_seconds=0.01,
                         threads=2, load=load)


def test_retries_keep_the_quietest_attempt_not_the_last():
    loads = iter([1.8, 0.9, 1.5])  # all busy: the second is the quietest
    said: list[str] = []
    kept, record = quietest(lambda: next(loads), lambda o: [_load(o, True)], retries=2, wait_s=0, say=said.append)
    assert kept == 0.9 and record["kept_attempt"] == 2 and record["attempts"] == 3 and record["busy"]
    assert [t["others_cpus"] for t in record["tries"]] == [1.8, 0.9, 1.5]
    assert len(said) == 2 and "measuring again" in said[0]


def test_a_quiet_attempt_beats_a_busy_one_and_stops_the_retries():
    loads = iter([(0.5, True), (0.6, False), (0.0, False)])
    kept, record = quietest(lambda: next(loads), lambda m: [_load(*m)], retries=2, wait_s=0, say=lambda _: None)
    assert kept == (0.6, False) and record["attempts"] == 2 and not record["busy"]


def test_every_row_states_its_load_and_a_busy_row_is_marked():
    quiet, busy = _result(_load(0.02, False)), _result(_load(1.9, True))
    busy.batch_size = 8
    text = format_latency([quiet, busy])
    assert "load batch 1: other processes used 0.02 of 2 CPUs, load average 1.20 (quiet)" in text
    assert "load batch 8: other processes used 1.90 of 2 CPUs, load average 1.20 (busy)" in text
    assert "1.000!" in text and "! = the machine was busy" in text
    assert "!" not in format_latency([quiet])
    assert load_line({}) == "not sampled"


def test_latency_section_names_hint_streams_and_threads():
    assert latency_mode({"performance_hint": "LATENCY", "streams": 1, "threads": 2}) == "LATENCY hint, 1 stream, 2 threads"
    assert latency_mode({"execution_mode": "sequential", "threads": 1}) == "sequential execution, 1 thread"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from edgeres.export import export_onnx
    from edgeres.models import ResNet

    return export_onnx(ResNet(18, num_classes=3), tmp_path_factory.mktemp("m"), input_size=32).path


BENCH = ["--min-runs", "3", "--min-seconds", "0", "--warmup", "0", "--no-throughput", "--threads", "1"]


@pytest.fixture
def cpu_hogs():
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))]
    time.sleep(0.5)
    yield hogs
    for hog in hogs:
        hog.kill()
        hog.wait()


def test_bench_on_a_busy_machine_says_so_records_the_wait_and_fails_on_request(model, cpu_hogs, capsys):
    code = main(["bench", str(model), *BENCH, "--min-seconds", "0.5", "--wait-quiet", "1", "--retries", "1",
                 "--fail-busy", "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # the result is emitted before the gate fails
    assert "waiting up to 1 s for a quiet CPU: others use" in captured.err
    assert "still busy after" in captured.err and "timing anyway, the figure is marked busy" in captured.err
    assert data["busy"] and data["attempts"] == 2 and len(data["tries"]) == 2
    assert data["wait"]["quiet"] is False and data["wait"]["limit_s"] == 1 and data["wait"]["waited_s"] > 0
    assert code == BUSY and "--fail-busy" in captured.err


def test_bench_text_states_the_load_of_every_figure(model, capsys):
    assert main(["bench", str(model), *BENCH, "--fail-busy"]) in (0, BUSY)  # whatever the neighbours do
    out = capsys.readouterr().out
    assert "load batch 1: other processes used" in out
    assert "latency: sequential execution, 1 thread; warm-up 0 runs" in out
