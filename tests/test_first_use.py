"""What a first-time user with their own checkpoint and images runs into (README as the only guide)."""

from __future__ import annotations

import os
import sys

import pytest

from edgeres.cli import main
from edgeres.progress import others_on_stderr


def test_info_refuses_weights_without_gradients_rather_than_ignoring_them(capsys):
    assert main(["info", "--depth", "18", "--weights", "mine.pth"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "--weights goes with --gradients" in err and "Traceback" not in err


def test_info_refuses_plot_without_gradients(capsys):
    assert main(["info", "--depth", "18", "--plot", "flow.png"]) == 2
    assert "--plot goes with --gradients" in capsys.readouterr().err


def test_library_output_lands_on_stderr_at_both_levels(capfd):
    print("before")
    with others_on_stderr():
        print("python level")
        sys.stdout.flush()
        os.write(1, b"c++ level\n")
    print("after")
    out, err = capfd.readouterr()
    assert out == "before\nafter\n"
    assert "python level" in err and "c++ level" in err


def test_nncf_progress_bars_stay_off_stdout_without_json(tmp_path, capfd, monkeypatch):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    import numpy as np
    import torch

    from edgeres.backends import BuildSpec, get_backend
    from edgeres.export import export_onnx
    from edgeres.models import ResNet
    from edgeres.targets import get_target

    monkeypatch.setenv("EDGERES_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    onnx_path = tmp_path / "model.onnx"
    export_onnx(ResNet(18, num_classes=4).eval(), onnx_path, input_size=32)
    capfd.readouterr()
    calib = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    get_backend("openvino").build(onnx_path, BuildSpec(get_target("intel-cpu"), "int8", tmp_path / "int8",
                                                       calibration=calib))
    out, err = capfd.readouterr()
    assert out == ""
    assert "Statistics collection" in err


def test_run_on_a_folder_says_it_is_a_folder_not_errno(tmp_path):
    from edgeres.bundle.runtime import _open_image
    from edgeres.errors import EdgeresError

    with pytest.raises(EdgeresError, match=r"is a folder: give image files") as info:
        _open_image(tmp_path)
    assert "Errno" not in str(info.value)


def _checkpoint(tmp_path, classes: int):
    import torch

    from edgeres.models import ResNet

    path = tmp_path / "mine.pth"
    torch.save(ResNet(18, num_classes=classes).state_dict(), path)
    return path


def _image_folders(root, names):
    from PIL import Image

    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40, 40), (i * 90, 30, 200)).save(root / name / f"{i}.jpg")
    return root


@pytest.mark.parametrize("folders, labels, needle", [
    (["a", "b", "c", "d"], None, "has 4 class folders but the model has 3 classes"),
    (["a", "b", "zz"], ["a", "b", "c"], "classes the model does not know: ['zz']"),
])
def test_build_refuses_val_folders_that_cannot_be_the_models_classes_before_any_work(
        tmp_path, capsys, folders, labels, needle):
    ckpt = _checkpoint(tmp_path, 3)
    val = _image_folders(tmp_path / "val", folders)
    argv = ["build", "--target", "cpu", "--depth", "18", "--weights", str(ckpt), "--val", str(val),
            "--calib", str(val), "--input-size", "32", "--out", str(tmp_path / "out")]
    if labels:
        (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n")
        argv += ["--labels", str(tmp_path / "labels.txt")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert needle in err and f"--val {val}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_build_never_replaces_a_users_own_report_in_out(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, 3)
    val = _image_folders(tmp_path / "val", ["a", "b", "c"])
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.md").write_text("my notes\n")
    (out / "other.txt").write_text("x\n")
    argv = ["build", "--target", "cpu", "--depth", "18", "--weights", str(ckpt), "--val", str(val),
            "--calib", str(val), "--input-size", "32", "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "is not an edgeres build folder and holds report.md" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["other.txt", "report.md"]
    assert (out / "report.md").read_text() == "my notes\n"



def test_a_checkpoint_saved_as_the_pytorch_tutorial_shows_loads(tmp_path):
    import torch

    from edgeres.models import ResNet
    from edgeres.models.checkpoint import read_state_dict

    state = ResNet(18, num_classes=3).state_dict()
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "model_state_dict": state, "optimizer_state_dict": {}, "loss": 0.3}, path)
    assert read_state_dict(path).keys() == state.keys()


def test_a_checkpoint_without_a_state_dict_names_the_keys_it_has(tmp_path):
    import torch

    from edgeres.errors import EdgeresError
    from edgeres.models.checkpoint import read_state_dict

    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "weights": {"a": torch.zeros(1)}}, path)
    with pytest.raises(EdgeresError, match=r"its keys are epoch, weights"):
        read_state_dict(path)


_ROW = {"target": "cpu", "backend": "onnxruntime", "precision": "fp32", "top1": 0.9, "top1_drop": 0.0,
        "agreement": 1.0, "p50_ms": 1.0, "p99_ms": 2.0, "throughput": 10.0, "size_bytes": 1000, "build_seconds": 1.0}


@pytest.fixture
def a_build_report(tmp_path):
    from edgeres.report import write_report

    write_report([_ROW], tmp_path / "build")
    return tmp_path / "build"


def test_report_out_never_replaces_a_users_own_report_md(tmp_path, capsys, a_build_report):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my notes\n")
    assert main(["report", str(a_build_report), "--out", str(mine)]) == 1
    assert "holds report.md that edgeres did not write" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["report.md"]
    assert (mine / "report.md").read_text() == "my notes\n"


@pytest.mark.parametrize("marker, what", [("manifest.json", "is a bundle"), ("kit.json", "is a device kit")])
def test_report_out_refuses_to_write_into_a_bundle_or_kit(tmp_path, capsys, a_build_report, marker, what):
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / marker).write_text("{}")
    assert main(["report", str(a_build_report), "--out", str(folder)]) == 1
    assert what in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == [marker]


def test_report_out_rewrites_its_own_earlier_report(tmp_path, a_build_report):
    merged = tmp_path / "merged"
    assert main(["report", str(a_build_report), "--out", str(merged)]) == 0
    assert main(["report", str(a_build_report), "--out", str(merged)]) == 0
    assert (merged / "report.md").is_file()


def test_a_kit_subcommand_error_names_the_subcommand(tmp_path, capsys):
    assert main(["kit", "show", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.startswith("edgeres kit show: error: kit ")


def test_summary_table_says_n_is_timed_runs_and_sizes_are_not_called_n():
    from edgeres.report import summary_table

    text = summary_table([{**_ROW, "n_val": 141, "runs": 204}])
    lines = text.splitlines()
    assert any(line.startswith("n: timed runs behind p50") for line in lines)
    assert "sets: validation 141 images" in text and "n: validation" not in text


def test_e2e_figures_carry_their_runs_and_load_and_a_busy_one_is_marked(monkeypatch):
    import numpy as np

    from edgeres.bundle import frames as bundle_frames
    from edgeres.data.preprocess import PreprocessSpec
    from edgeres.errors import EdgeresError
    from edgeres.report.rows import ResultRow, e2e_cell
    from edgeres.validate import frames

    def no_fused_path(*_):
        raise EdgeresError("no frame input here")

    monkeypatch.setattr(bundle_frames, "frame_runner", no_fused_path)
    spec = PreprocessSpec.for_size(32)
    inputs = spec.normalize(np.zeros((32, 32, 3), dtype=np.uint8))[None]
    result = frames.measure_frames(object(), lambda x: np.zeros((len(x), 3), np.float32), spec, inputs, seconds=0.05)
    assert result["latency"]["engine only"]["runs"] >= 20
    assert "busy" in result["load"]
    row = ResultRow(target="cpu", backend="onnxruntime", precision="fp32",
                    extra={"e2e_host_p50_ms": 2.0, "frames": {"engine_p50_ms": 1.0, "load": {"busy": True}}})
    assert e2e_cell(row) == "2.00! (2.00x)"


def test_a_labels_file_from_windows_notepad_reads_clean_names(tmp_path):
    from edgeres.classes import read_labels_file

    path = tmp_path / "labels.txt"
    path.write_bytes(b"\xef\xbb\xbfbolt\r\nnut\r\n\r\n")
    assert read_labels_file(path) == ["bolt", "nut"]


def test_a_val_folders_labels_txt_with_a_bom_finds_its_first_class_folder(tmp_path):
    from edgeres.data import open_set

    root = _image_folders(tmp_path / "val", ["a", "b"])
    (root / "labels.txt").write_bytes(b"\xef\xbb\xbfb\r\na\r\n")
    assert open_set(root).classes == ["b", "a"]


def test_reports_of_one_checkpoint_named_two_ways_merge_as_one_model(tmp_path):
    from edgeres.report import merge_reports, write_report

    model = {"depth": 18, "num_classes": 7, "input_size": 64, "weights_sha256": "ab", "classes": ["a"] * 7}
    write_report([_ROW], tmp_path / "one", model={**model, "weights": "r18.pth", "classes_from": "--labels l.txt"})
    write_report([{**_ROW, "target": "x"}], tmp_path / "two",
                 model={**model, "weights": "../r18.pth", "classes_from": "the validation set's class folders"})
    merged = merge_reports([tmp_path / "one", tmp_path / "two"])
    assert merged.model["weights_sha256"] == "ab"
    assert not any("different models" in n for n in merged.notes)
    write_report([_ROW], tmp_path / "three", model={**model, "weights_sha256": "cd"})
    assert any("different models" in n for n in merge_reports([tmp_path / "one", tmp_path / "three"]).notes)


def test_build_warns_when_fewer_unnamed_val_folders_than_classes_are_taken_in_order():
    import dataclasses
    from types import SimpleNamespace

    from edgeres.build_request import name_classes

    @dataclasses.dataclass
    class Source:  # what name_classes reads of a ModelSource: a 10-class checkpoint without model.json
        num_classes: int = 10
        weights: None = None
        classes: None = None
        classes_from: None = None

    val = SimpleNamespace(classes=["n01", "n02", "n03"], has_labels=True)
    _, warning = name_classes(Source(), SimpleNamespace(val="val", labels=None), val)
    assert "has 3 class folders for a 10-class model" in warning and "give --labels FILE" in warning


def test_build_warns_when_validation_images_are_also_calibration_images(tmp_path):
    from edgeres.build_request import shared_images
    from edgeres.data import open_set

    root = _image_folders(tmp_path / "images", ["a", "b"])
    calib, val = open_set(root), open_set(root / ".." / "images")
    (warning,) = shared_images(calib, val)
    assert warning.startswith("4 of the 4 validation images are also calibration images")
    other = _image_folders(tmp_path / "val", ["a", "b"])
    assert shared_images(calib, open_set(other)) == []
    assert shared_images(calib, calib) == []  # no --val: validating on the calibration images is said elsewhere


def test_a_safetensors_checkpoint_loads_and_a_broken_one_is_one_line(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    from edgeres.errors import EdgeresError
    from edgeres.models import ResNet
    from edgeres.models.checkpoint import read_state_dict

    state = {k: v.contiguous() for k, v in ResNet(18, num_classes=3).state_dict().items()}
    save_file(state, tmp_path / "model.safetensors")
    assert read_state_dict(tmp_path / "model.safetensors").keys() == state.keys()
    (tmp_path / "bad.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(EdgeresError, match=r"bad.safetensors: not a safetensors file"):
        read_state_dict(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("word, hint", [("buidl", "did you mean 'build'?"), ("run", "python -m edgeres.run BUNDLE")])
def test_a_mistyped_command_gets_the_nearest_one_or_how_to_run_a_bundle(capsys, word, hint):
    assert main([word]) == 2
    err = capsys.readouterr().err
    assert hint in err and err.count("\n") == 2  # the error line and the --help hint


def test_one_skipped_file_is_one_file(tmp_path):
    from edgeres.data import open_set

    root = _image_folders(tmp_path / "val", ["a", "b"])
    (root / "notes.txt").write_text("x")
    with pytest.warns(UserWarning, match=r"skipped 1 file outside the class folders in .*: notes.txt"):
        open_set(root)


@pytest.mark.parametrize("argv, line", [
    (["bench", "model.onnx", "--runs", "10"],
     "edgeres bench: error: unrecognized arguments: --runs 10; did you mean '--min-runs'?"),
    (["kit", "show", "kit", "--jsn"], "edgeres kit show: error: unrecognized arguments: --jsn; did you mean '--json'?"),
])
def test_an_unknown_flag_is_refused_by_its_command_with_the_nearest_flag(capsys, argv, line):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines()[0] == line
