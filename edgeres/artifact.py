"""The files edgeres builds and the batch range they serve: plain data, no backend.

Low in the import graph on purpose: ``export``, ``quantize``, ``backends``, ``bundle`` and
``kit`` all read and write artifacts, and none of them should import another to do it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres import limits, schemas
from edgeres.errors import EdgeresError
from edgeres.fileio import load_json, sha256_file, write_json_atomic


@dataclass(frozen=True)
class BatchProfile:
    """Smallest, most common and largest batch an artifact must serve."""

    min: int = 1
    opt: int = 1
    max: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise EdgeresError(f"batch profile needs 1 <= min <= opt <= max, got {self.min}:{self.opt}:{self.max}")
        limits.check("the largest batch of a batch profile", self.max, limits.BATCH)

    @classmethod
    def parse(cls, text: str) -> BatchProfile:
        """'1:4:8' (min:opt:max) or a single '8' (1:8:8)."""
        try:
            parts = [int(p) for p in str(text).split(":")]
        except ValueError:
            raise EdgeresError(f"batch profile {text!r} is not MIN:OPT:MAX integers (e.g. 1:1:8)") from None
        if len(parts) == 1:
            return cls(1, parts[0], parts[0])
        if len(parts) != 3:
            raise EdgeresError(f"batch profile {text!r} is not MIN:OPT:MAX (e.g. 1:1:8)")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"


@dataclass
class Artifact:
    """A built file (ONNX, OpenVINO IR, TensorRT engine) and what it was built from and for.

    ``metadata`` always has: backend, backend_version, precision, target, input (name,
    shape, dtype), output, sha256 of ``path``; backends add their own (TensorRT: GPU
    compute capability and TensorRT version). It lives beside ``path`` as ``<path>.json``.
    """

    path: Path
    metadata: dict[str, Any]
    files: list[Path] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return str(self.metadata["backend"])

    @property
    def precision(self) -> str:
        return str(self.metadata["precision"])

    @staticmethod
    def sidecar_of(path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        return path.with_name(path.name + ".json")

    @property
    def sidecar(self) -> Path:
        return self.sidecar_of(self.path)

    def all_files(self) -> list[Path]:
        """The main file, the extra files it needs (an IR's .bin) and the sidecar."""
        return [self.path, *self.files, self.sidecar]

    def save(self) -> Artifact:
        self.metadata["sha256"] = sha256_file(self.path)
        self.metadata["files"] = [f.name for f in self.files]
        self.metadata["files_sha256"] = {f.name: sha256_file(f) for f in self.files}
        write_json_atomic(self.sidecar, self.metadata)
        return self

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Artifact:
        path = Path(path)
        if path.is_dir():
            raise EdgeresError(f"{path} is a directory: name the artifact file inside it (model.onnx, model.xml, ...)")
        if not path.is_file():
            raise EdgeresError(f"artifact {path} does not exist")
        sidecar = cls.sidecar_of(path)
        if not sidecar.is_file():
            raise EdgeresError(f"artifact {path} has no metadata file {sidecar.name} beside it; rebuild it with edgeres")
        metadata = load_json(sidecar, "metadata", "rebuild the artifact", shape=schemas.Sidecar)
        files = [path.parent / name for name in metadata.get("files", [])]
        return cls(path=path, metadata=metadata, files=files)

    def verify(self) -> None:
        """Refuse an artifact whose file changed after it was built."""
        expected = self.metadata.get("sha256")
        if expected and sha256_file(self.path) != expected:
            raise EdgeresError(f"{self.path} does not match the checksum recorded at build time: rebuild it")
        recorded = self.metadata.get("files_sha256") or {}
        for f in self.files:
            if not f.is_file():
                raise EdgeresError(f"{self.path} needs {f.name} beside it, and it is missing")
            if f.name in recorded and sha256_file(f) != recorded[f.name]:
                raise EdgeresError(f"{f} does not match the checksum recorded at build time: rebuild it")
