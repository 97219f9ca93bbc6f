import json

import pytest

from edgeres.cli import main


def test_info_prints_table_and_counts(capsys):
    assert main(["info", "--depth", "18"]) == 0
    out = capsys.readouterr().out
    assert "11,689,512" in out and "layer4" in out and "BasicBlock" in out


def test_info_json(capsys):
    assert main(["info", "--depth", "50", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == 25_557_032 and abs(data["gmacs"] - 4.09) < 0.02
    assert len(data["stages"]) == 6


@pytest.mark.parametrize("argv,message", [
    (["info", "--depth", "42"], "unsupported depth 42"),
    (["info", "--depth", "50", "--num-classes", "-3"], "--num-classes: must be at least 1"),
    (["info", "--depth", "50", "--input-size", "16"], "--input-size: must be at least 32"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


def test_doctor_lists_every_backend(capsys):
    assert main(["doctor", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "edgeres.doctor" and "cpu" in doc
    data = doc["backends"]
    assert set(data) == {"onnxruntime", "openvino", "tensorrt"}
    assert data["onnxruntime"]["ok"] is True
    assert data["tensorrt"]["ok"] is False and data["tensorrt"]["reason"]


def test_doctor_names_the_instruction_sets_that_decide_precision(capsys):
    from edgeres.hostinfo import instruction_sets

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    found = [name for name, present in instruction_sets().items() if present]
    assert "instruction sets: " in out and all(name in out for name in found)
    assert "INT8 " in out and "BF16" in out and "FP16" in out  # what each precision gets here, in words


def test_instruction_set_notes_follow_the_flags():
    from edgeres.hostinfo import int8_peak, precision_notes

    vnni = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}
    assert precision_notes(vnni)[0].startswith("INT8 uses AVX-512 VNNI")
    assert precision_notes({"avx2"})[0].startswith("INT8 has no VNNI")
    assert precision_notes(vnni | {"amx_int8", "amx_bf16"})[:2] == [
        "INT8 uses AMX tile multiplies here (the fastest INT8 path on a CPU)",
        "BF16 uses AMX here: usually faster than FP32"]
    peak = int8_peak(cores=2, flags=vnni, vendor="GenuineIntel", family=6, clock=(2000.0, "max"))
    assert peak["macs_per_cycle_per_core"] == 128 and "x 2 cores" in peak["formula"]


def test_device_side_commands_need_only_numpy():
    """`edgeres kit build` and bundles run on a Jetson with TensorRT and numpy, nothing else."""
    import subprocess
    import sys

    code = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'onnxruntime', 'openvino', 'nncf', 'onnx', 'PIL', 'matplotlib'):
            raise ImportError(name + ' is not on this device')
sys.meta_path.insert(0, Block())
from edgeres.cli import build_parser
build_parser().parse_args(['kit', 'build', 'kit-jetson-orin'])
import edgeres.kit, edgeres.bundle.runtime, edgeres.validate
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("argv,value", [
    (["bench", "m.onnx", "--batch", "1,8"], "1,8"),
    (["kit", "build", "k", "--batch", "1,2"], "1,2"),
    (["kit", "build", "k", "--batch-sizes", "1,2"], "1,2"),  # the old spelling, hidden
    (["validate", "m.onnx", "--val", "v", "--batch", "4"], 4),
    (["validate", "m.onnx", "--val", "v", "--batch-size", "4"], 4),
    (["quantize", "m.onnx", "--calib", "c", "--out", "o", "--batch", "8"], 8),
    (["quantize", "m.onnx", "--calib", "c", "--out", "o", "--batch-size", "8"], 8),
])
def test_one_flag_name_for_the_batch_everywhere(argv, value):
    from edgeres.cli import build_parser

    assert build_parser().parse_args(argv).batch == value


def test_old_batch_spellings_are_hidden_from_help(capsys):
    from edgeres.cli import build_parser

    for argv in (["kit", "build", "--help"], ["validate", "--help"], ["quantize", "--help"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
        out = capsys.readouterr().out
        assert "--batch " in out and "--batch-size" not in out
