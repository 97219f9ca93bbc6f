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
