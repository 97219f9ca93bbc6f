"""What travels to a device: built once per target on the host, checked on arrival.

A payload is one ``.tar.gz`` sent as bytes with its sha256:

- for a TensorRT target, the device kit the build wrote (``kit.json`` lists every file's
  sha256; the device builds its engines from it);
- for any other target, a folder with one bundle per precision (each bundle's sealed
  ``manifest.json`` lists its files' sha256), the validation slice (preprocessed inputs,
  labels, the host's FP32 reference logits) and ``payload.json`` listing every file's sha256.

On the device: the tarball's sha256 first, then a safe extraction (no path leaves the
folder), then every file against its manifest, before anything runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeres import schemas
from edgeres.bundle.archive import safe_extract, write_tar_gz
from edgeres.bundle.manifest import check_schema
from edgeres.errors import EdgeresError
from edgeres.fileio import atomic_path, load_json, sha256_file, write_json_atomic

SCHEMA = "edgeres-fleet-payload"
SCHEMA_VERSION = 1
PAYLOAD_JSON = "payload.json"
VALIDATION = {"inputs": "validation/inputs.npy", "labels": "validation/labels.npy",
              "reference_logits": "validation/reference_logits.npy"}


@dataclass
class Payload:
    """One target's payload on the host: what a device of that target receives."""

    target: str
    kind: str               # "kit" (TensorRT: engines built on the device) or "bundles"
    tarball: Path
    sha256: str
    size: int
    precisions: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "kind": self.kind, "tarball": str(self.tarball), "sha256": self.sha256,
                "bytes": self.size, "precisions": self.precisions}


def _payload(target: str, kind: str, tarball: Path, precisions: list[str]) -> Payload:
    return Payload(target, kind, tarball, sha256_file(tarball), tarball.stat().st_size, precisions)


def build_payload(request: Any, log: Any = None) -> Payload:
    """Build ``request`` (a ``build_request.BuildRequest``) on this host and pack what its devices need."""
    from edgeres.pipeline import build

    result = build(request, log)
    if result.kit is not None:
        kit = Path(result.kit)
        return _payload(result.target.name, "kit", kit.with_name(kit.name + ".tar.gz"),
                        [r for r in load_json(kit / "kit.json", "kit manifest")["precisions"]])
    return _payload(result.target.name, "bundles", write_bundles(request, result), [r["precision"] for r in result.rows])


def write_bundles(request: Any, result: Any) -> Path:
    """``OUT/fleet-TARGET.tar.gz`` for a build's result: a bundle per built precision and the validation slice."""
    from edgeres.artifact import Artifact
    from edgeres.build_request import resolve_model

    source = resolve_model(request)
    artifacts = {row["precision"]: Artifact.load(row["extra"]["artifact"]) for row in result.rows}
    return pack_bundles(Path(result.out_dir) / f"fleet-{result.target.name}", result.target, artifacts,
                        model=source.describe(), preprocess=source.preprocess, classes=source.classes,
                        validation=validation_slice(request, result, source))


def pack_bundles(where: Path, target: Any, artifacts: dict[str, Any], *, model: dict[str, Any], preprocess: Any,
                 classes: list[str] | None, validation: tuple[np.ndarray, np.ndarray | None, np.ndarray]) -> Path:
    """``where/`` and ``where.tar.gz``: ``bundles/PRECISION/``, ``validation/*.npy``, ``payload.json``."""
    from edgeres.bundle.package import make_bundle

    arrays = dict(zip(("inputs", "labels", "reference_logits"), validation))
    with atomic_path(where) as stage:
        (stage / "bundles").mkdir(parents=True)
        bundles = {}
        for precision, artifact in artifacts.items():
            name = f"bundles/{precision}"
            make_bundle(artifact, stage / name, target=target, model_info=model, preprocess=preprocess, labels=classes)
            (stage / f"{name}.tar.gz").unlink()  # the folder travels; its tarball would be a second copy
            bundles[precision] = name
        for key, rel in VALIDATION.items():
            array = arrays[key]
            if array is not None:
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                np.save(stage / rel, array, allow_pickle=False)
        files = {p.relative_to(stage).as_posix(): sha256_file(p) for p in sorted(stage.rglob("*")) if p.is_file()}
        write_json_atomic(stage / PAYLOAD_JSON, {
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "target": target.name, "bundles": bundles,
            "validation": {k: v for k, v in VALIDATION.items() if arrays[k] is not None}, "model": model,
            "files": files})
    return write_tar_gz(where, where.with_name(where.name + ".tar.gz"))


def validation_slice(request: Any, result: Any, source: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The first ``SLICE_SIZE`` validation inputs the build used, with the FP32 reference it computed."""
    from edgeres.data import open_set
    from edgeres.pipeline import DEFAULT_CALIBRATION, SLICE_SIZE

    if request.val:
        val = open_set(request.val, size=request.val_size, preprocess=source.preprocess)
    else:  # the build validated on its calibration images
        val = open_set(request.calib or DEFAULT_CALIBRATION, size=request.calib_size, preprocess=source.preprocess)
    inputs = np.ascontiguousarray(val.head(SLICE_SIZE), dtype=np.float32)
    cached = Path(result.out_dir) / ".cache" / "reference.npz"  # the build's FP32 reference (pipeline._reference)
    with np.load(cached, allow_pickle=False) as ref:
        logits = np.ascontiguousarray(ref["logits"][: len(inputs)], dtype=np.float32)
        labels = ref["labels"][: len(inputs)].astype(np.int64) if "labels" in ref else None
    return inputs, labels, logits


# --- on the device ------------------------------------------------------------------------------

def unpack(data: bytes, sha256: str, dest: Path) -> Path:
    """Check the payload's bytes, extract them safely into ``dest``, return its one top folder."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise EdgeresError(f"the payload arrived damaged: sha256 {digest[:12]}..., the host sent {sha256[:12]}...")
    archive = dest / "payload.tar.gz"
    archive.write_bytes(data)
    tops = list(safe_extract(archive, dest / "x").iterdir())
    archive.unlink()
    if len(tops) != 1 or not tops[0].is_dir():
        raise EdgeresError(f"the payload should hold one folder, found {sorted(p.name for p in tops)}")
    return tops[0]


def load_payload(root: Path) -> dict[str, Any]:
    """``payload.json`` of an unpacked bundles payload, with every file it lists verified."""
    manifest = check_schema(load_json(root / PAYLOAD_JSON, "fleet payload"), schema=SCHEMA, version=SCHEMA_VERSION,
                            what="fleet payload", where=str(root / PAYLOAD_JSON),
                            shape=schemas.FleetPayload)
    for rel, digest in manifest["files"].items():
        path = (root / rel).resolve()
        if not path.is_relative_to(root.resolve()) or not path.is_file() or sha256_file(path) != digest:
            raise EdgeresError(f"payload file {rel} is missing or does not match its sha256: not running it")
    return manifest
