"""Validation: metrics on hand-made logits, latency statistics on a fake runner, collect/validate."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgeres.errors import EdgeresError
from edgeres.evaluate import parse_batches, validate
from edgeres.validate import LatencyResult, collect_logits, compare, measure_latency
from edgeres.validate.latency import format_latency, summarize_times
from edgeres.validate.metrics import centred_cosine, cosine_similarity, run_batch, topk_accuracy

LOGITS = np.array([
    [9.0, 1, 2, 3, 4, 5, 0],  # top-1: 0; top-5: 0,6?no -> {0,5,4,3,2}
    [0.0, 9, 8, 7, 6, 5, 4],  # top-1: 1; top-5: {1,2,3,4,5}
    [1.0, 2, 3, 4, 5, 6, 7],  # top-1: 6; top-5: {6,5,4,3,2}
    [7.0, 6, 5, 4, 3, 2, 1],  # top-1: 0; top-5: {0,1,2,3,4}
], dtype=np.float32)
LABELS = np.array([0, 5, 1, 4])  # top-1 hits: row 0 only; top-5 hits: rows 0, 1, 3 (row 2's label 1 is 6th)


def test_top1_top5_on_hand_made_logits():
    result = compare(LOGITS, LABELS)
    assert result.n == 4 and result.top1 == pytest.approx(0.25) and result.top5 == pytest.approx(0.75)
    assert result.agreement is None and result.cosine is None and result.max_abs_diff is None
    assert topk_accuracy(LOGITS, LABELS, 100) == 1.0  # k capped at the class count


def test_agreement_cosine_and_diff_against_reference():
    reference = LOGITS.copy()
    reference[2] = reference[2][::-1]  # changes row 2's top-1 (6 -> 0)
    reference[3] *= 2  # same direction: cosine 1, same top-1
    result = compare(LOGITS, LABELS, reference)
    assert result.agreement == pytest.approx(0.75)
    expected_cos = np.mean([1.0, 1.0, float(cosine_similarity(LOGITS[2:3], reference[2:3])[0]), 1.0])
    assert result.cosine == pytest.approx(expected_cos)
    assert result.max_abs_diff == pytest.approx(7.0)  # row 3, first logit: 14 - 7
    assert result.reference_top1 == pytest.approx(0.25) and result.top1_drop == pytest.approx(0.0)
    d = result.to_dict()
    assert set(d) >= {"n", "top1", "top5", "agreement", "cosine", "max_abs_diff", "top1_drop"}


def test_centred_cosine_sees_what_the_plain_cosine_hides():
    """Logits dominated by a part shared by every image (as a random network's are): a candidate
    that keeps the shared part but scrambles what varies between images keeps a plain cosine
    near 1; the centred cosine drops to chance."""
    rng = np.random.default_rng(0)
    shared = 100.0 * rng.standard_normal(10)
    varying = rng.standard_normal((200, 10))
    reference = shared + varying
    scrambled = compare(shared + rng.permutation(varying), None, reference)
    assert scrambled.cosine > 0.999 and abs(scrambled.centred_cosine) < 0.2
    faithful = compare(reference + 0.01 * rng.standard_normal(reference.shape), None, reference)
    assert faithful.centred_cosine > 0.999
    assert centred_cosine(reference[:1], reference[:1]) is None and compare(reference[:1], None, reference[:1]
                                                                            ).centred_cosine is None
    assert "centred logits" in scrambled.format() and "(plain)" in scrambled.format()


def test_without_labels_only_agreement():
    result = compare(LOGITS, None, LOGITS)
    assert result.top1 is None and result.top5 is None
    assert result.agreement == 1.0 and result.cosine == pytest.approx(1.0) and result.max_abs_diff == 0.0
    assert "top-1 agreement" in result.format() and "top-5" not in result.format()


def test_cosine_of_zero_rows_and_bad_shapes():
    zeros = np.zeros((2, 3), np.float32)
    assert np.all(cosine_similarity(zeros, zeros) == 1.0)
    with pytest.raises(EdgeresError, match="reference logits have shape"):
        compare(LOGITS, None, LOGITS[:, :3])
    with pytest.raises(EdgeresError, match="labels range over"):
        compare(LOGITS, np.array([0, 1, 2, 9]))
    with pytest.raises(EdgeresError, match="3 labels for 4"):
        compare(LOGITS, LABELS[:3])
    with pytest.raises(EdgeresError, match="non-empty"):
        compare(np.zeros((0, 3)))


class FakeRunner:
    """Sleeps a known pattern; returns one-hot 'logits' for the mean pixel's sign."""

    def __init__(self, pattern=(0.001, 0.002), classes=3, fixed_batch=None):
        self.pattern, self.calls, self.classes = pattern, 0, classes
        self.info = {"backend": "fake", "threads": 3, "timed": "fake clock", "fixed_batch": fixed_batch}
        self.batches = []

    def __call__(self, batch):
        self.batches.append(batch.shape[0])
        time.sleep(self.pattern[self.calls % len(self.pattern)])
        self.calls += 1
        out = np.zeros((batch.shape[0], self.classes), np.float32)
        out[np.arange(batch.shape[0]), (batch.reshape(batch.shape[0], -1).mean(1) > 0).astype(int)] = 1
        return out


def test_latency_structure_on_fake_runner():
    runner = FakeRunner()
    results = measure_latency(runner, (3, 8, 8), batch_sizes=(1, 4), min_runs=6, min_seconds=0, warmup=2)
    assert [r.batch_size for r in results] == [1, 4] and runner.calls == 2 * (6 + 2)
    for r in results:
        assert isinstance(r, LatencyResult) and r.iterations == 6 and r.warmup == 2
        assert r.p99_ms is None  # 6 runs cannot support a 99th percentile
        assert r.min_ms <= r.p50_ms <= r.p90_ms <= r.max_ms and r.mean_ms > 0 and r.std_ms >= 0
        assert r.throughput == pytest.approx(r.batch_size * 1000 / r.mean_ms)
        assert r.threads == 3 and r.timed == "fake clock" and r.peak_rss_mb > 0
        assert set(r.to_dict()) >= {"mean_ms", "std_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms",
                                    "throughput", "threads", "peak_rss_mb"}
    text = format_latency(results)
    assert "p99" in text and "timed: fake clock" in text and "threads: 3" in text
    assert "until at least 6 runs and 0 s" in text


def test_latency_runs_until_both_count_and_time_are_reached():
    runner = FakeRunner(pattern=(0.0,))
    runner.time_batch = lambda batch: (runner(batch), 2.5)[1]  # a runner that times itself (CUDA events)
    (r,) = measure_latency(runner, (3, 4, 4), min_runs=5, min_seconds=0.05, warmup=0)
    assert r.iterations >= 5 and r.total_seconds >= 0.05 and r.mean_ms == pytest.approx(2.5)
    (r,) = measure_latency(runner, (3, 4, 4), min_runs=120, min_seconds=0.0, warmup=0)
    assert r.iterations == 120 and r.p99_ms == pytest.approx(2.5)  # enough runs for p99
    assert set(r.load) >= {"before", "during", "busy"} and (r.min_runs, r.min_seconds) == (120, 0.0)


def test_summary_statistics_are_exact():
    s = summarize_times([1.0, 2.0, 3.0, 4.0, 5.0], batch_size=2)
    assert s["mean_ms"] == 3.0 and s["p50_ms"] == 3.0 and s["min_ms"] == 1.0 and s["max_ms"] == 5.0
    assert s["p90_ms"] == pytest.approx(4.6) and s["throughput"] == pytest.approx(2000 / 3)


@pytest.mark.parametrize("kwargs,message", [
    ({"min_runs": 0}, "at least 1"),
    ({"min_seconds": -1.0}, "negative"),
    ({"batch_sizes": (0,)}, "positive integers"),
])
def test_latency_bad_arguments(kwargs, message):
    with pytest.raises(EdgeresError, match=message):
        measure_latency(FakeRunner(), (3, 4, 4), **kwargs)


class FakeSet:
    """In-memory stand-in for an edgeres.data ImageSet."""

    def __init__(self, n=10, labeled=True, classes=("neg", "pos", "other")):
        rng = np.random.default_rng(0)
        self.images = rng.standard_normal((n, 3, 8, 8)).astype(np.float32)
        self.labels = (self.images.reshape(n, -1).mean(1) > 0).astype(np.int64) if labeled else None
        self.classes, self.name, self.has_labels = list(classes), f"fake ({n} images)", labeled

    def __len__(self):
        return len(self.images)

    def batches(self, batch_size=32, progress=None):
        for s in range(0, len(self.images), batch_size):
            yield self.images[s:s + batch_size], None if self.labels is None else self.labels[s:s + batch_size]

    def describe(self):
        return {"name": self.name, "size": len(self)}


def test_collect_logits_labeled_and_unlabeled():
    logits, labels = collect_logits(FakeRunner(pattern=(0,)), FakeSet(10), batch_size=4)
    assert logits.shape == (10, 3) and labels.shape == (10,)
    assert compare(logits, labels).top1 == 1.0
    logits, labels = collect_logits(FakeRunner(pattern=(0,)), FakeSet(5, labeled=False), batch_size=4)
    assert logits.shape == (5, 3) and labels is None


def test_fixed_batch_runner_is_fed_padded_batches():
    runner = FakeRunner(pattern=(0,), fixed_batch=4)
    logits, _ = collect_logits(runner, FakeSet(10), batch_size=3)
    assert logits.shape == (10, 3) and set(runner.batches) == {4}
    out = run_batch(runner, np.zeros((9, 3, 8, 8), np.float32))
    assert out.shape == (9, 3)


def test_parse_batches():
    assert parse_batches("1,8") == [1, 8] and parse_batches("4, 4,2") == [4, 2]
    for bad in ("", "a", "0,1"):
        with pytest.raises(EdgeresError):
            parse_batches(bad)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from edgeres.export import export_onnx
    from edgeres.models import ResNet

    return export_onnx(ResNet(18, num_classes=3), tmp_path_factory.mktemp("v"), input_size=32,
                       classes=["neg", "pos", "other"])


class ImageSet32(FakeSet):
    def __init__(self, n=6, labeled=True):
        super().__init__(n, labeled)
        self.images = np.random.default_rng(1).standard_normal((n, 3, 32, 32)).astype(np.float32)


def test_validate_with_reference_on_a_set(tiny_onnx):
    v = validate(tiny_onnx.path, ImageSet32(), reference=tiny_onnx.path, batch_size=4, progress=False)
    assert v.accuracy.n == 6 and v.accuracy.agreement == 1.0 and v.accuracy.max_abs_diff == 0.0
    assert v.accuracy.top1 is not None and v.to_dict()["accuracy"]["cosine"] == pytest.approx(1.0)


def test_validate_reports_wrong_input_size(tiny_onnx):
    with pytest.raises(EdgeresError, match="model expects 3x32x32 inputs, got 3x8x8"):
        validate(tiny_onnx.path, FakeSet(4), progress=False)
