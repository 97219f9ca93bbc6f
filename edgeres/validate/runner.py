"""Open any artifact (ONNX, OpenVINO IR, TensorRT engine) as a runner, through its backend.

The sidecar's ``backend`` picks the backend; a kind that another backend executes (an
exported or quantized ONNX) goes to the backend that declares it loads it.
"""

from __future__ import annotations

import os
from typing import Any

from edgeres.artifact import Artifact
from edgeres.backends import backend_for
from edgeres.backends.base import Runner
from edgeres.errors import EdgeresError


def as_artifact(artifact: Artifact | str | os.PathLike[str]) -> Artifact:
    return artifact if isinstance(artifact, Artifact) else Artifact.load(artifact)


def load_runner(artifact: Artifact | str | os.PathLike[str], **options: Any) -> Runner:
    """A runner for ``artifact`` (a path with its sidecar, or an ``Artifact``).

    ``options`` (e.g. ``threads=2``) go to the backend's ``load``; None values are dropped.
    Raises ``EdgeresError`` when the backend is not usable here, saying why.
    """
    artifact = as_artifact(artifact)
    backend = backend_for(artifact)
    available = backend.available()
    if not available.ok:
        raise EdgeresError(f"{artifact.path.name} needs the {backend.name} backend, which is not usable here: "
                           f"{available.reason}")
    return backend.load(artifact, **{k: v for k, v in options.items() if v is not None})
def artifact_input_shape(artifact: Artifact) -> tuple[int, int, int]:
    """(channels, height, width) of the artifact's input, from its metadata."""
    spec = artifact.metadata.get("input") or {}
    shape = list(spec.get("shape") or [])
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
        size = artifact.metadata.get("input_size")
        if size:
            return (int(artifact.metadata.get("in_channels", 3)), int(size), int(size))
        raise EdgeresError(f"{artifact.sidecar} records no usable input shape ({shape}); rebuild the artifact")
    return (int(shape[1]), int(shape[2]), int(shape[3]))


def artifact_fixed_batch(artifact: Artifact) -> int | None:
    """The batch size a static-batch artifact was built for, or None when the batch is dynamic."""
    shape = list((artifact.metadata.get("input") or {}).get("shape") or [])
    return int(shape[0]) if shape and isinstance(shape[0], int) else None
