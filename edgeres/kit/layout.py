"""What is where in a device kit, and reading one back (from its folder or its .tar.gz).

numpy only: the device side reads kits without torch or onnx.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeres import schemas
from edgeres.artifact import BatchProfile
from edgeres.bundle.archive import safe_extract
from edgeres.bundle.manifest import check_schema
from edgeres.errors import EdgeresError
from edgeres.fileio import atomic_path, load_json, sha256_file

KIT_SCHEMA = "edgeres-kit"
KIT_SCHEMA_VERSION = 2   # 2: int8_fp16 ONNX, per-version recipes, proof (ONNX checks + Q/DQ lint), DLA rows
KIT_JSON = "kit.json"
REPORT_JSON = "kit-report.json"
DEFAULT_SLICE = 256
VALIDATION_FILES = {"inputs": "validation/inputs.npy", "labels": "validation/labels.npy",
                    "reference_logits": "validation/reference_logits.npy"}
# Which ONNX each build needs, by the plan's onnx_role.
ROLE_TO_ONNX = {"qdq": "int8", "fp32": "fp32", "fp16": "fp16"}


def _extract(tar_path: Path, dest: Path) -> Path:
    """Unpack a kit tarball (one top-level folder) into ``dest``, atomically and safely."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".edgeres-kit-", dir=dest) as tmp:
        tops = list(safe_extract(tar_path, tmp).iterdir())
        if len(tops) != 1 or not tops[0].is_dir():
            raise EdgeresError(f"kit {tar_path} should hold one top-level folder, found {sorted(p.name for p in tops)}")
        root = dest / tops[0].name
        if root.exists():
            # Unpacked before (engines may have been built in it since): reuse it if it is the same kit.
            same = (root / KIT_JSON).is_file() and (root / KIT_JSON).read_bytes() == (tops[0] / KIT_JSON).read_bytes()
            if not same:
                raise EdgeresError(f"{root} already exists and is not the kit in {tar_path.name}: remove it, or give "
                                   "the kit folder instead of the tarball")
            return root
        with atomic_path(root) as final:
            os.replace(tops[0], final)
    return root


@dataclass
class Kit:
    root: Path
    manifest: dict[str, Any]

    def file(self, rel: str) -> Path:
        return self.root / rel

    @property
    def precisions(self) -> list[str]:
        return list(self.manifest["precisions"])

    def target(self) -> Any:
        from edgeres.targets import parse_target

        data = {k: v for k, v in self.manifest["target"].items() if k != "source" and v is not None}
        return parse_target(data, self.root / KIT_JSON)

    def batch(self) -> BatchProfile:
        return BatchProfile.parse(self.manifest["profiles"]["batch"])

    def verify(self) -> None:
        """Every file present and unchanged since the kit was written."""
        for rel, digest in self.manifest["files"].items():
            path = self.root / rel
            if not path.is_file():
                raise EdgeresError(f"kit {self.root} is missing {rel}: copy the whole kit (or its .tar.gz)")
            if sha256_file(path) != digest:
                raise EdgeresError(f"kit file {rel} does not match its sha256 in {KIT_JSON}: "
                                   "the kit was modified or damaged in transit; copy it again")

    def validation(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        v = self.manifest["validation"]
        inputs = np.load(self.file(v["inputs"]), allow_pickle=False)
        labels = np.load(self.file(v["labels"]), allow_pickle=False) if v.get("labels") else None
        reference = np.load(self.file(v["reference_logits"]), allow_pickle=False)
        return inputs, labels, reference


def load_kit(path: str | os.PathLike[str], extract_to: str | os.PathLike[str] | None = None) -> Kit:
    """A kit from its directory or its ``.tar.gz`` (extracted beside it, or into ``extract_to``)."""
    path = Path(path)
    if path.is_file() and (path.name.endswith((".tar.gz", ".tgz", ".tar"))):
        path = _extract(path, Path(extract_to) if extract_to else path.parent)
    if path.is_file():
        raise EdgeresError(f"{path} is a file, not an edgeres kit: give the kit folder (the one with {KIT_JSON}) "
                           "or its .tar.gz")
    if not path.is_dir():
        raise EdgeresError(f"kit {path} does not exist (give the kit folder or its .tar.gz)")
    manifest_path = path / KIT_JSON
    if not manifest_path.is_file():
        raise EdgeresError(f"{path} is not an edgeres kit: it has no {KIT_JSON}")
    manifest = check_schema(load_json(manifest_path, "kit manifest", "copy the kit again"), schema=KIT_SCHEMA,
                            version=KIT_SCHEMA_VERSION, what="kit manifest", where=str(manifest_path),
                            shape=schemas.KitManifest)
    return Kit(path, manifest)

