"""Bundles: contents and manifest, round trip through the folder and the .tar.gz, refusal of
tampered files, other targets, unusable backends, and malicious archives."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from test_bundle_support import CLASSES, PREPROCESS, tiny_artifact, write_target

from edgeres.artifact import Artifact
from edgeres.backends.base import Availability
from edgeres.bundle import MANIFEST, load_bundle, make_bundle, safe_extract, tarball_of, write_tar_gz
from edgeres.bundle.manifest import seal
from edgeres.cli import main
from edgeres.errors import EdgeresError
from edgeres.fileio import read_json, write_json_atomic
from edgeres.targets import load_target_file


@pytest.fixture
def target(tmp_path):
    return load_target_file(write_target(tmp_path / "targets"))


@pytest.fixture
def bundle_dir(tmp_path, target):
    artifact = tiny_artifact(tmp_path / "build")
    return make_bundle(artifact, tmp_path / "out" / "tiny-bundle", target=target,
                       model_info={"depth": 18, "num_classes": 10, "input_size": 32}, preprocess=PREPROCESS,
                       labels=CLASSES, metrics={"top1": 0.5, "p50_ms": 0.1})


def test_bundle_contents_and_manifest(bundle_dir):
    assert bundle_dir.is_dir() and tarball_of(bundle_dir).is_file()
    names = sorted(p.name for p in bundle_dir.iterdir())
    assert names == ["labels.txt", "manifest.json", "model.onnx", "model.onnx.json"]
    m = read_json(bundle_dir / MANIFEST)
    assert m["schema"] == "edgeres.bundle" and m["schema_version"] == 1
    assert m["target"]["name"] == "test-cpu" and m["target"]["aliases"] == ["test-ort"]
    assert m["backend"]["name"] == "onnxruntime" and m["precision"] == "fp32"
    assert m["model"]["depth"] == 18 and m["model"]["num_classes"] == 10
    assert m["input"]["name"] == "input" and m["input"]["preprocess"]["crop"] == 32
    assert m["output"]["name"] == "logits" and m["output"]["postprocess"] == "softmax"
    assert m["labels"] == CLASSES and (bundle_dir / "labels.txt").read_text().splitlines() == CLASSES
    assert m["requirements"]["backend"] == "onnxruntime" and m["requirements"]["torch"] is False
    assert m["metrics"] == {"top1": 0.5, "p50_ms": 0.1}
    assert set(m["files"]) == {"labels.txt", "model.onnx", "model.onnx.json"}
    assert all(len(e["sha256"]) == 64 and e["bytes"] > 0 for e in m["files"].values())
    with tarfile.open(tarball_of(bundle_dir)) as tar:
        assert sorted(tar.getnames()) == ["tiny-bundle", *(f"tiny-bundle/{n}" for n in names)]
    # no temporary leftovers beside the outputs
    assert sorted(p.name for p in bundle_dir.parent.iterdir()) == ["tiny-bundle", "tiny-bundle.tar.gz"]


@pytest.mark.parametrize("use_tar", [False, True])
def test_round_trip_runs_like_the_artifact(bundle_dir, tmp_path, use_tar):
    from edgeres.backends import get_backend

    source = tarball_of(bundle_dir) if use_tar else bundle_dir
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    expected = get_backend("onnxruntime").load(Artifact.load(tmp_path / "build" / "model.onnx"))(x)
    with load_bundle(source, target="test-cpu") as bundle:
        assert bundle.labels == CLASSES and bundle.preprocess == PREPROCESS and bundle.sample_shape == (3, 32, 32)
        np.testing.assert_allclose(bundle.load_runner()(x), expected, rtol=1e-5, atol=1e-5)
        root = bundle.root
    if use_tar:
        assert not root.exists(), "the extraction folder is removed on close"


def test_target_alias_accepted_other_target_refused(bundle_dir, target):
    load_bundle(bundle_dir, target="test-ort").close()
    load_bundle(bundle_dir, target=target).close()
    with pytest.raises(EdgeresError, match=r"built for target 'test-cpu' \(onnxruntime\), not 'jetson'"):
        load_bundle(tarball_of(bundle_dir), target="jetson")


def test_modified_file_refused_in_folder(bundle_dir):
    with open(bundle_dir / "model.onnx", "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(EdgeresError, match="file 'model.onnx' was modified after packaging"):
        load_bundle(bundle_dir)


def _repack(bundle_dir, tmp_path, edit):
    """Copy the bundle, let ``edit`` change the copy, tar it (without refreshing checksums)."""
    import shutil

    copy = tmp_path / "copy" / bundle_dir.name
    shutil.copytree(bundle_dir, copy)
    edit(copy)
    return write_tar_gz(copy, tmp_path / "copy.tar.gz")


def test_modified_file_refused_in_tarball(bundle_dir, tmp_path):
    tar = _repack(bundle_dir, tmp_path, lambda d: (d / "labels.txt").write_text("cat\n" * 10))
    with pytest.raises(EdgeresError, match="file 'labels.txt' was modified after packaging"):
        load_bundle(tar)


def test_missing_file_refused(bundle_dir):
    (bundle_dir / "model.onnx.json").unlink()
    with pytest.raises(EdgeresError, match="file 'model.onnx.json' listed in manifest.json is missing"):
        load_bundle(bundle_dir)


def test_manifest_without_checksum_for_needed_file_refused(bundle_dir):
    m = read_json(bundle_dir / MANIFEST)
    del m["files"]["model.onnx"]
    write_json_atomic(bundle_dir / MANIFEST, seal(m))  # crafted, not merely edited: it is sealed again
    with pytest.raises(EdgeresError, match="no checksum for 'model.onnx'"):
        load_bundle(bundle_dir)


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/passwd"])
def test_manifest_with_unsafe_names_refused(bundle_dir, name):
    m = read_json(bundle_dir / MANIFEST)
    m["files"][name] = {"sha256": "0" * 64, "bytes": 1}
    write_json_atomic(bundle_dir / MANIFEST, seal(m))
    with pytest.raises(EdgeresError, match="unsafe"):
        load_bundle(bundle_dir)


def test_edited_manifest_refused(bundle_dir):
    m = read_json(bundle_dir / MANIFEST)
    m["labels"] = list(reversed(m["labels"]))
    write_json_atomic(bundle_dir / MANIFEST, m)
    with pytest.raises(EdgeresError, match="manifest.json was modified after packaging"):
        load_bundle(bundle_dir)


def test_newer_schema_refused(bundle_dir):
    m = read_json(bundle_dir / MANIFEST)
    m["schema_version"] = 99
    write_json_atomic(bundle_dir / MANIFEST, m)
    with pytest.raises(EdgeresError, match="newer than this edgeres understands"):
        load_bundle(bundle_dir)


def test_not_a_bundle(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeresError, match="not an edgeres bundle"):
        load_bundle(tmp_path / "empty")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball at all")
    with pytest.raises(EdgeresError, match="neither a bundle folder nor"):
        load_bundle(tmp_path / "junk.tar.gz")
    with pytest.raises(EdgeresError, match="does not exist"):
        load_bundle(tmp_path / "missing")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_tarball_refused(bundle_dir, tmp_path, keep):
    data = tarball_of(bundle_dir).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(EdgeresError, match="truncated|not a readable|neither|cannot extract"):
        load_bundle(cut)


def test_unusable_backend_refused(bundle_dir, monkeypatch):
    from edgeres.backends import get_backend

    backend = get_backend("onnxruntime")
    monkeypatch.setattr(type(backend), "available",
                        lambda self: Availability(False, "onnxruntime is not installed: pip install it"))
    with pytest.raises(EdgeresError, match="runs on onnxruntime, which is not usable here: onnxruntime is not"):
        load_bundle(bundle_dir)
    load_bundle(bundle_dir, require_backend=False).close()  # inspecting it still works


# --- packaging refusals and atomicity ---------------------------------------------------------

def test_artifact_for_another_backend_or_precision_refused(tmp_path, target):
    ov = tiny_artifact(tmp_path / "ov", backend="openvino")
    with pytest.raises(EdgeresError, match="is a openvino artifact; target 'test-cpu' runs onnxruntime"):
        make_bundle(ov, tmp_path / "b", target=target, model_info={}, preprocess=PREPROCESS)
    fp16 = tiny_artifact(tmp_path / "fp16", precision="fp16")
    with pytest.raises(EdgeresError, match="does not support precision fp16"):
        make_bundle(fp16, tmp_path / "b", target=target, model_info={}, preprocess=PREPROCESS)
    other = tiny_artifact(tmp_path / "other", target="intel-cpu")
    with pytest.raises(EdgeresError, match="built for target 'intel-cpu', not 'test-cpu'"):
        make_bundle(other, tmp_path / "b", target=target, model_info={}, preprocess=PREPROCESS)
    assert not (tmp_path / "b").exists()


def test_exported_onnx_packages_for_onnxruntime(tmp_path, target):
    art = tiny_artifact(tmp_path / "export", backend="onnx")
    out = make_bundle(art, tmp_path / "b", target=target, model_info={"num_classes": 10}, preprocess=PREPROCESS)
    with load_bundle(out) as bundle:
        assert bundle.backend == "onnxruntime" and bundle.labels is None
        assert not (out / "labels.txt").exists()


def test_failed_bundle_leaves_nothing_and_rebuild_replaces(tmp_path, target, bundle_dir):
    art = tiny_artifact(tmp_path / "build2")
    with pytest.raises(EdgeresError, match="3 labels given for a model with 10 classes"):
        make_bundle(art, tmp_path / "fail", target=target, model_info={"num_classes": 10}, preprocess=PREPROCESS,
                    labels=["a", "b", "c"])
    assert list(tmp_path.glob("fail*")) == [] and list(tmp_path.glob(".fail*")) == []
    # packaging again into an existing bundle replaces it whole
    (bundle_dir / "stale.txt").write_text("old")
    make_bundle(art, bundle_dir, target=target, model_info={}, preprocess=PREPROCESS)
    assert not (bundle_dir / "stale.txt").exists() and not (bundle_dir / "labels.txt").exists()
    load_bundle(tarball_of(bundle_dir)).close()


def test_modified_artifact_is_not_packaged(tmp_path, target):
    art = tiny_artifact(tmp_path / "build3")
    art.path.write_bytes(art.path.read_bytes() + b"x")
    with pytest.raises(EdgeresError, match="does not match the checksum"):
        make_bundle(art, tmp_path / "b", target=target, model_info={}, preprocess=PREPROCESS)


# --- malicious archives -----------------------------------------------------------------------

def _tar(path, entries):
    """entries: (name, kind, payload) with kind file|symlink|hardlink|chr|fifo|dir."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = payload.encode()
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize("entries,reason", [
    ([("/tmp/evil.txt", "file", "x")], "is an absolute path"),
    ([("b/../../evil.txt", "file", "x")], "contains '..'"),
    ([("../evil.txt", "file", "x")], "contains '..'"),
    ([("b/link", "symlink", "/etc/passwd")], "link to an absolute path"),
    ([("b/link", "symlink", "../../outside")], "points outside"),
    ([("b/file", "file", "x"), ("b/hard", "hardlink", "../outside")], "points outside"),
    ([("b", "symlink", "."), ("c", "symlink", "b/b/..")], "points outside"),
    ([("b/null", "chr", None)], "device file"),
    ([("b/pipe", "fifo", None)], "device file or FIFO"),
])
def test_malicious_tarball_refused(tmp_path, entries, reason):
    evil = _tar(tmp_path / "evil.tar.gz", [("b", "dir", None), ("b/manifest.json", "file", "{}"), *entries])
    dest = tmp_path / "inner" / "dest"
    with pytest.raises(EdgeresError, match=reason):
        safe_extract(evil, dest)
    assert not dest.exists(), "nothing is extracted from a refused archive"
    with pytest.raises(EdgeresError, match="refusing to extract"):
        load_bundle(evil)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "outside").exists()


def test_links_inside_the_archive_are_fine(tmp_path):
    ok = _tar(tmp_path / "ok.tar.gz", [("b", "dir", None), ("b/f.txt", "file", "hi"), ("b/l", "symlink", "f.txt")])
    dest = safe_extract(ok, tmp_path / "dest")
    assert (dest / "b" / "l").read_text() == "hi"


def test_bundle_symlink_leaving_the_folder_refused(bundle_dir, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("\n".join(CLASSES) + "\n")
    (bundle_dir / "labels.txt").unlink()
    (bundle_dir / "labels.txt").symlink_to(outside)
    with pytest.raises(EdgeresError, match="leads outside the bundle"):
        load_bundle(bundle_dir)


# --- edgeres package ---------------------------------------------------------------------------

def test_package_cli(tmp_path, capsys):
    art = tiny_artifact(tmp_path / "build")
    toml = write_target(tmp_path / "targets")
    out = tmp_path / "bundle"
    assert main(["package", str(art.path), "--target", str(toml), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "bundle for test-cpu (onnxruntime" in text and "python -m edgeres.run" in text
    with load_bundle(tarball_of(out), target="test-cpu") as bundle:
        assert bundle.labels == CLASSES and bundle.manifest["model"]["depth"] == 18
        assert bundle.preprocess == PREPROCESS
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"L{i}" for i in range(10)) + "\n")
    assert main(["package", str(art.path), "--targets-dir", str(tmp_path / "targets"), "--target", "test-ort",
                 "--out", str(out), "--labels", str(labels), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["manifest"]["labels"][0] == "L0" and data["tarball"].endswith("bundle.tar.gz")


@pytest.mark.parametrize("argv,message,code", [
    (["package", "{art}", "--out", "{tmp}/b"], "name one with --target", 1),
    (["package", "{tmp}/none.onnx", "--target", "x", "--out", "{tmp}/b"], "does not exist", 1),
    (["package", "{art}", "--target", "jetsn", "--out", "{tmp}/b"], "unknown target 'jetsn'", 2),
])
def test_package_cli_errors(tmp_path, capsys, argv, message, code):
    art = tiny_artifact(tmp_path / "build")
    argv = [a.format(art=art.path, tmp=tmp_path) for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bundle_never_replaces_a_folder_of_the_users_files(tmp_path, target):
    mine = tmp_path / "mine"
    (mine / "important").mkdir(parents=True)
    (mine / "important" / "keep.txt").write_text("mine")
    with pytest.raises(EdgeresError, match="is not an edgeres bundle"):
        make_bundle(tiny_artifact(tmp_path / "build"), mine, target=target, model_info={}, preprocess=PREPROCESS)
    assert (mine / "important" / "keep.txt").read_text() == "mine"
