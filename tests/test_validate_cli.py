"""`edgeres validate` and `edgeres bench` from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeres.cli import main

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from edgeres.export import export_onnx
    from edgeres.models import ResNet

    return export_onnx(ResNet(18, num_classes=3), tmp_path_factory.mktemp("m"), input_size=32).path


def test_bench_prints_percentiles_and_what_was_timed(model, capsys):
    assert main(["bench", str(model), "--batch", "1,2", "--iterations", "3", "--min-seconds", "0", "--warmup", "1",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "p50" in out and "p99" in out and "img/s" in out and "timed: host wall clock" in out
    assert "threads: 1" in out


def test_bench_json(model, capsys):
    assert main(["bench", str(model), "--min-runs", "100", "--min-seconds", "0.05", "--warmup", "0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (r,) = data["results"]
    assert r["batch_size"] == 1 and r["iterations"] >= 100 and r["p99_ms"] >= r["p50_ms"]
    assert r["load"]["during"]["cpus"] >= 1
    tput = data["throughput"]
    assert tput["batch"] == 1 and tput["runs"] >= 10
    # ONNX Runtime: the best of its modes, each tried and kept (one per thread split on a multi-core host)
    assert (tput["mode"], tput["requests"], tput["threads"]) in {(t["mode"], t["requests"], t["threads"])
                                                                for t in tput["tried"]} or not tput["tried"]
    assert data["runner"]["backend"] == "onnxruntime" and data["input_shape"] == [3, 32, 32]


@pytest.mark.parametrize("argv,message", [
    (["--batch", "0"], "a batch size must be at least 1"),
    (["--iterations", "0"], "at least 1"),
    (["--retries", "-1"], "--retries: must be at least 0"),
])
def test_bench_bad_arguments(model, capsys, argv, message):
    assert main(["bench", str(model), *argv]) != 0
    assert message in capsys.readouterr().err


def test_bench_refuses_missing_files_and_times_a_sidecarless_onnx_as_a_foreign_model(tmp_path, model, capsys):
    assert main(["bench", str(tmp_path / "nope.onnx")]) == 1
    assert "does not exist" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    assert main(["bench", str(notes)]) == 1
    assert "is not a model bench can time" in capsys.readouterr().err
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(model.read_bytes())
    assert main(["bench", str(bare), "--iterations", "2", "--min-seconds", "0", "--no-throughput", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["foreign"] is True and data["backend"] == "onnxruntime"


def test_bench_on_a_folder_names_the_artifacts_inside_it(model, capsys):
    assert main(["bench", str(model.parent)]) == 1
    err = capsys.readouterr().err
    assert "is not an artifact edgeres can time" in err and f"it holds {model}" in err


class TinySet:
    name, classes, has_labels = "tiny (6 images)", None, True

    def __init__(self):
        self.x = np.random.default_rng(0).standard_normal((6, 3, 32, 32)).astype(np.float32)

    def __len__(self):
        return 6

    def batches(self, batch_size=32, progress=None):
        for s in range(0, 6, batch_size):
            yield self.x[s:s + batch_size], np.zeros(len(self.x[s:s + batch_size]), np.int64)

    def describe(self):
        return {"name": self.name}


def test_validate_cli_with_reference(model, capsys, monkeypatch):
    import edgeres.data

    opened = {}

    def fake_open_set(source, *, size=None, seed=0, preprocess=None, require_labels=False):
        opened.update(source=source, preprocess=preprocess)
        return TinySet()

    monkeypatch.setattr(edgeres.data, "open_set", fake_open_set, raising=False)
    argv = ["validate", str(model), "--val", "somewhere", "--reference", str(model), "--batch-size", "4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "top-1 agreement with reference" in out and "100.00%" in out
    assert opened["source"] == "somewhere" and opened["preprocess"].crop == 32
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["accuracy"]["n"] == 6 and data["accuracy"]["agreement"] == 1.0
