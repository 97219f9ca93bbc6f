"""Artifacts carry checksums of every file they need; a changed or missing one is refused."""

import pytest

from edgeres.artifact import Artifact
from edgeres.errors import EdgeresError


def _ir(tmp_path):
    (tmp_path / "model.xml").write_text("<net/>")
    (tmp_path / "model.bin").write_bytes(b"\0" * 16)
    return Artifact(tmp_path / "model.xml", {"backend": "openvino", "precision": "fp32"},
                    [tmp_path / "model.bin"]).save()


def test_round_trip_verifies(tmp_path):
    _ir(tmp_path)
    loaded = Artifact.load(tmp_path / "model.xml")
    loaded.verify()
    assert loaded.files == [tmp_path / "model.bin"] and loaded.precision == "fp32"


@pytest.mark.parametrize("change,message", [
    (lambda d: (d / "model.bin").write_bytes(b"\1" * 16), "model.bin does not match the checksum"),
    (lambda d: (d / "model.bin").unlink(), "needs model.bin beside it"),
    (lambda d: (d / "model.xml").write_text("<other/>"), "model.xml does not match the checksum"),
])
def test_changed_or_missing_file_is_refused(tmp_path, change, message):
    _ir(tmp_path)
    change(tmp_path)
    with pytest.raises(EdgeresError, match=message):
        Artifact.load(tmp_path / "model.xml").verify()


def test_sidecar_that_is_not_an_object_is_one_clear_error(tmp_path):
    _ir(tmp_path)
    (tmp_path / "model.xml.json").write_text("[1, 2]")
    with pytest.raises(EdgeresError, match="holds a JSON list, not an object"):
        Artifact.load(tmp_path / "model.xml")
