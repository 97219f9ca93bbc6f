"""The bundle's ``manifest.json``: what the model is, how to feed it, what it needs, checksums.

Schema (``schema`` = "edgeres.bundle", ``schema_version`` = 1)::

    {
      "schema": "edgeres.bundle", "schema_version": 1, "edgeres_version": "0.1.0", "created": "...Z",
      "target": {"name": "intel-cpu", "aliases": [...], "backend": "openvino", "description": "..."},
      "backend": {"name": "openvino", "version": "2026.4.1"},
      "precision": "int8", "execution_precision": "int8" | null,
      "model": {"family": "resnet", "depth": 50, "num_classes": 10, ...model_info},
      "input": {"name", "shape", "dtype", "layout", "batch": {"min","opt","max"}, "preprocess": {...}},
      "output": {"name", "shape", "dtype", "kind": "logits", "postprocess": "softmax"},
      "labels": [...] | null, "labels_file": "labels.txt" | null,
      "artifact": {"path": "model.xml", "files": ["model.bin"], "metadata": "model.xml.json"},
      "requirements": {"backend", "backend_version", "python_packages", ...device keys},
      "metrics": {...} | null,
      "files": {"model.xml": {"sha256": "...", "bytes": 123}, ...}   # every file but manifest.json
    }
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from edgeres import schemas
from edgeres.errors import EdgeresError
from edgeres.fileio import sha256_file, sha256_json

if TYPE_CHECKING:
    from edgeres.backends.base import Backend

SCHEMA = "edgeres.bundle"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
LABELS = "labels.txt"



def device_requirements(backend: Backend, backend_version: str | None, metadata: dict[str, Any],
                        target_device: dict[str, Any]) -> dict[str, Any]:
    """What the device needs: the backend and its version, the target's device table, and the
    artifact's own constraints (the metadata keys the backend names in ``requirement_keys``)."""
    req: dict[str, Any] = {"backend": backend.name, "backend_version": backend_version,
                           "python_packages": list(backend.python_packages),
                           "torch": False}
    req.update(target_device)
    for key in backend.requirement_keys:
        if metadata.get(key) is not None:
            req[key] = metadata[key]
    return req


def file_entries(root: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    return {name: {"sha256": sha256_file(root / name), "bytes": (root / name).stat().st_size}
            for name in sorted(names)}


def _safe_name(name: Any) -> bool:
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        return False
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts


def check_schema(doc: Any, *, schema: str, version: int, shape: type[schemas.BaseModel], what: str,
                 where: str) -> dict[str, Any]:
    """Refuse a bundle or kit document that is not ours, is from a newer edgeres, or lacks what
    loading needs or has it in the wrong type (``shape``; ``what``: "bundle manifest", "kit manifest")."""
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        raise EdgeresError(f"{where} is not an edgeres {what}")
    found = doc.get("schema_version")
    if not isinstance(found, int) or found > version:
        raise EdgeresError(f"{where}: {what} schema version {found!r} is newer than this edgeres understands "
                           f"({version}); upgrade edgeres on this device")
    return schemas.check(shape, doc, where, f"the {what} is damaged: write it again with edgeres")


def seal(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with ``manifest_sha256``: a hash of its own content (key order and layout
    do not matter), so an edit to labels or preprocessing is caught like an edit to a file."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return {**body, "manifest_sha256": sha256_json(body)}


def check_manifest(manifest: Any, where: str) -> dict[str, Any]:
    """Refuse a manifest that is not ours, is from a newer edgeres, or is missing what loading needs."""
    check_schema(manifest, schema=SCHEMA, version=SCHEMA_VERSION, what="bundle manifest", where=f"{where}: {MANIFEST}",
                 shape=schemas.BundleManifest)
    if seal(manifest)["manifest_sha256"] != manifest["manifest_sha256"]:
        raise EdgeresError(f"{where}: {MANIFEST} was modified after packaging (its manifest_sha256 does not match "
                           "its content); refusing to load it. Re-copy the bundle or rebuild it")
    files = manifest["files"]
    if not isinstance(files, dict) or not all(_safe_name(n) and isinstance(e, dict) for n, e in files.items()):
        raise EdgeresError(f"{where}: {MANIFEST} lists files with unsafe or malformed names; refusing it")
    art = manifest["artifact"]
    needed = [art.get("path"), art.get("metadata"), *art.get("files", [])]
    if manifest.get("labels_file"):
        needed.append(manifest["labels_file"])
    for name in needed:
        if name not in files:
            raise EdgeresError(f"{where}: {MANIFEST} has no checksum for '{name}', which the bundle needs; "
                               "refusing an unverifiable bundle")
    return manifest


def verify_files(root: Path, manifest: dict[str, Any], where: str) -> None:
    """Every listed file exists, is a plain file inside the bundle, and has its recorded sha256."""
    real_root = root.resolve()
    for name, entry in manifest["files"].items():
        path = root / name
        if not path.is_file():
            raise EdgeresError(f"{where}: file '{name}' listed in {MANIFEST} is missing; re-copy the whole bundle")
        if real_root not in path.resolve().parents:
            raise EdgeresError(f"{where}: file '{name}' is a link that leads outside the bundle; refusing it")
        if sha256_file(path) != entry.get("sha256"):
            raise EdgeresError(f"{where}: file '{name}' was modified after packaging (its sha256 does not match "
                               f"{MANIFEST}); refusing to load it. Re-copy the bundle or rebuild it")
