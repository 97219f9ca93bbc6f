"""The demo model trainer: a short run learns, is deterministic, and writes what CONTRACTS promise."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from edgeres.data import DIGITS_PREPROCESS, cache_dir, open_set
from edgeres.data import demo_model as demo_module
from edgeres.data.train import train_demo_model
from edgeres.models import ResNet, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGERES_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield cache_dir()


def test_short_training_run_learns(tmp_path: Path, demo_cache: Path) -> None:
    train = open_set("demo:digits-train", size=320, seed=0, require_labels=True)
    val = open_set("demo:digits-val", size=150, seed=0, require_labels=True)
    info = train_demo_model(tmp_path, depth=18, epochs=3, batch_size=32, lr=0.1, train_set=train, val_set=val,
                            progress=False)
    assert info["val_top1"] >= 0.5, info["history"]  # chance is 0.1
    saved = json.loads((tmp_path / "model.json").read_text())
    for key in ("depth", "num_classes", "input_size", "preprocess", "classes", "val_top1", "train_seconds"):
        assert key in saved
    assert saved["depth"] == 18 and saved["num_classes"] == 10 and saved["input_size"] == 32
    assert saved["preprocess"] == DIGITS_PREPROCESS.to_dict() and saved["classes"] == [str(i) for i in range(10)]
    assert saved["train_set"]["fingerprint"] == train.fingerprint()
    model = ResNet(18, num_classes=10)
    load_checkpoint(model, tmp_path / "model.pth")  # torchvision layout, strict


def test_training_is_deterministic(tmp_path: Path, demo_cache: Path) -> None:
    train = open_set("demo:digits-train", size=48, seed=1, require_labels=True)
    val = open_set("demo:digits-val", size=16, require_labels=True)
    runs = []
    for name in ("a", "b"):
        train_demo_model(tmp_path / name, epochs=1, batch_size=16, train_set=train, val_set=val, progress=False)
        runs.append(torch.load(tmp_path / name / "model.pth", weights_only=True))
    assert runs[0].keys() == runs[1].keys()
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_script_cli(tmp_path: Path, demo_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("train_demo", ROOT / "scripts" / "train_demo.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--epochs", "1", "--train-size", "32", "--batch-size", "16", "--quiet",
                        "--out", str(tmp_path / "m")]) == 0
    assert "val top-1" in capsys.readouterr().out
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    assert info["epochs"] == 1 and info["train_set"]["size"] == 32 and info["val_set"]["size"] == 359
    assert script.main(["--depth", "19", "--out", str(tmp_path / "x")]) == 2
    assert "unsupported depth 19" in capsys.readouterr().err


def test_ensure_demo_model_trains_once(monkeypatch: pytest.MonkeyPatch, demo_cache: Path) -> None:
    calls = []

    def fake_train(out: Path, **kwargs: object) -> dict:
        calls.append(kwargs)
        (Path(out) / "model.pth").write_bytes(b"weights")
        (Path(out) / "model.json").write_text("{}")
        return {}

    monkeypatch.setattr("edgeres.data.train.train_demo_model", fake_train)
    first = demo_module.ensure_demo_model(depth=34, epochs=2, progress=False)
    again = demo_module.ensure_demo_model(depth=34, epochs=2, progress=False)
    assert first == again and len(calls) == 1 and calls[0]["depth"] == 34
    assert first.parent == demo_cache / "models" and "resnet34-e2-s0" in first.name
    assert (first / "model.pth").read_bytes() == b"weights"
    assert not [p for p in first.parent.iterdir() if p.name.endswith(".tmp")]
    demo_module.ensure_demo_model(depth=34, epochs=3, progress=False)
    assert len(calls) == 2  # another recipe, another cache entry
