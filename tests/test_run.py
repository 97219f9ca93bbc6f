"""python -m edgeres.run: classify images with a bundle, including in a process without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bundle_support import CLASSES, NO_TORCH, PREPROCESS, tiny_artifact, write_images, write_target

from edgeres.bundle import load_bundle, make_bundle, tarball_of
from edgeres.run import main
from edgeres.targets import load_target_file

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bundle_dir(tmp_path):
    target = load_target_file(write_target(tmp_path / "targets"))
    return make_bundle(tiny_artifact(tmp_path / "build"), tmp_path / "out" / "tiny", target=target,
                       model_info={"depth": 18, "num_classes": 10}, preprocess=PREPROCESS, labels=CLASSES)


def test_classifies_images(bundle_dir, tmp_path, capsys):
    images = write_images(tmp_path / "images", 3)
    assert main([str(tarball_of(bundle_dir)), *map(str, images), "--topk", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["target"] == "test-cpu" and data["backend"] == "onnxruntime" and len(data["results"]) == 3
    for result, image in zip(data["results"], images):
        probs = [p["probability"] for p in result["top"]]
        assert result["image"] == str(image) and len(probs) == 3 and probs == sorted(probs, reverse=True)
        assert all(p["label"] == CLASSES[p["index"]] for p in result["top"]) and sum(probs) <= 1.0 + 1e-6

    # the same numbers as running the model on the bundle's own preprocessing by hand
    from PIL import Image

    with load_bundle(bundle_dir) as bundle:
        x = np.stack([PREPROCESS(Image.open(p)) for p in images])
        logits = bundle.load_runner()(x)
    best = [int(i) for i in logits.argmax(1)]
    assert [r["top"][0]["index"] for r in data["results"]] == best

    assert main([str(bundle_dir), str(images[0])]) == 0
    text = capsys.readouterr().out
    assert "ResNet-18, test-cpu / onnxruntime" in text and str(images[0]) in text and " 1. class-" in text


def test_fixed_batch_artifact(tmp_path, capsys):
    target = load_target_file(write_target(tmp_path / "targets"))
    out = make_bundle(tiny_artifact(tmp_path / "b1", batch=1), tmp_path / "fixed", target=target,
                      model_info={}, preprocess=PREPROCESS)
    images = write_images(tmp_path / "images", 3)
    assert main([str(out), *map(str, images), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["results"]) == 3


@pytest.mark.parametrize("extra,message,code", [
    (["--target", "jetson"], "built for target 'test-cpu'", 1),
    (["--topk", "0"], "--topk: must be at least 1", 2),
])
def test_errors_are_one_line(bundle_dir, tmp_path, capsys, extra, message, code):
    images = write_images(tmp_path / "images", 1)
    assert main([str(bundle_dir), str(images[0]), *extra]) == code
    err = capsys.readouterr().err
    assert message in err and "edgeres" in err
    assert [line for line in err.splitlines() if "error:" in line] == [err.splitlines()[0]]


def test_unreadable_image(bundle_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert main([str(bundle_dir), str(bad)]) == 1
    assert "cannot read image" in capsys.readouterr().err
    assert main([str(bundle_dir), str(tmp_path / "missing.jpg")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_runs_in_a_process_that_cannot_import_torch(bundle_dir, tmp_path):
    images = write_images(tmp_path / "images", 2)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # sanity: the blocker really blocks torch
    blocked = subprocess.run([sys.executable, "-c", NO_TORCH.replace('runpy.run_module("edgeres.run"', 'import torch; '
                              'runpy.run_module("edgeres.run"')], capture_output=True, text=True, env=env, check=False)
    assert blocked.returncode != 0 and "torch is blocked" in blocked.stderr
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, str(tarball_of(bundle_dir)), *map(str, images),
                           "--topk", "2", "--json", "--target", "test-ort"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["results"]) == 2 and all(len(r["top"]) == 2 for r in data["results"])
    assert "TORCH_MODULES []" in proc.stderr


def test_bench_times_a_bundle(bundle_dir, capsys):
    pytest.importorskip("edgeres.evaluate", reason="edgeres bench (issue 4) is not in this tree yet")
    from edgeres.cli import main as cli

    assert cli(["bench", str(tarball_of(bundle_dir)), "--batch", "1,2", "--iterations", "3", "--min-seconds", "0", "--no-throughput", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bundle"].endswith("tiny.tar.gz") and data["target"] == "test-cpu"
    assert [r["batch_size"] for r in data["results"]] == [1, 2] and data["input_shape"] == [3, 32, 32]
