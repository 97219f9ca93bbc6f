"""Packaging an artifact into a bundle: a directory and its ``.tar.gz``, both written atomically."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeres import __version__
from edgeres.artifact import Artifact
from edgeres.bundle.archive import write_tar_gz
from edgeres.bundle.manifest import (
    LABELS,
    MANIFEST,
    SCHEMA,
    SCHEMA_VERSION,
    device_requirements,
    file_entries,
    seal,
)
from edgeres.data.preprocess import PreprocessSpec
from edgeres.errors import EdgeresError
from edgeres.fileio import atomic_path, check_replaceable, now_utc, write_json_atomic

if TYPE_CHECKING:
    from edgeres.targets import Target

def tarball_of(bundle_dir: str | os.PathLike[str]) -> Path:
    """``out/bundle`` -> ``out/bundle.tar.gz``."""
    d = Path(bundle_dir)
    return d.with_name(d.name + ".tar.gz")


def check_artifact_for_target(artifact: Artifact, target: Target) -> None:
    """Refuse to package an artifact for a target it was not built for."""
    from edgeres.backends import get_backend

    backend = artifact.metadata.get("backend")
    if not get_backend(target.backend).loads(artifact):
        raise EdgeresError(f"{artifact.path} is a {backend} artifact; target '{target.name}' runs "
                           f"{target.backend}. Build it for that target first")
    built_for = artifact.metadata.get("target")
    if built_for and not target.matches(str(built_for)):
        raise EdgeresError(f"{artifact.path} was built for target '{built_for}', not '{target.name}'")
    if artifact.precision not in target.precisions:
        raise EdgeresError(f"target '{target.name}' does not support precision {artifact.precision} "
                           f"(it supports {', '.join(target.precisions)})")


def _io_spec(meta: Any, fallback: dict[str, Any]) -> dict[str, Any]:
    spec = dict(fallback)
    if isinstance(meta, dict):
        spec.update({k: v for k, v in meta.items() if v is not None})
    return spec


def make_bundle(artifact: Artifact, out_dir: str | os.PathLike[str], *, target: Target | str,
                model_info: dict[str, Any], preprocess: PreprocessSpec, labels: list[str] | None = None,
                metrics: dict[str, Any] | None = None, targets_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write ``out_dir`` (artifact files, its metadata, ``manifest.json``, ``labels.txt``) and
    ``out_dir.tar.gz``. Both appear only when complete; an existing bundle there is replaced.

    ``model_info``: depth, num_classes and anything else worth shipping (input_size,
    checkpoint_sha256, weights source...). ``metrics``: build metrics to record (top-1,
    agreement, latency, build time...), or None. Returns ``out_dir``.
    """
    from edgeres.backends import get_backend
    from edgeres.targets import get_target

    target = get_target(target, targets_dir)
    artifact.verify()
    check_artifact_for_target(artifact, target)
    meta = artifact.metadata
    if labels is not None:
        labels = [str(label) for label in labels]
        if any("\n" in label or "\r" in label for label in labels):
            raise EdgeresError("labels cannot contain line breaks")
        n = model_info.get("num_classes")
        if n is not None and len(labels) != int(n):
            raise EdgeresError(f"{len(labels)} labels given for a model with {n} classes")
    if meta.get("backend") == target.backend and meta.get("backend_version"):
        backend_version = meta["backend_version"]
    else:
        backend_version = get_backend(target.backend).available().version

    out_dir = Path(out_dir)
    main_name = artifact.path.name
    extra_names = [f.name for f in artifact.files]
    clash = {main_name, *extra_names, artifact.sidecar.name} & {MANIFEST, LABELS}
    if clash:
        raise EdgeresError(f"artifact file name {min(clash)} is reserved in a bundle; rename the artifact")
    check_replaceable(out_dir, MANIFEST, "bundle")
    with atomic_path(out_dir) as stage:
        stage.mkdir()
        for src in [artifact.path, *artifact.files]:
            shutil.copyfile(src, stage / src.name)
        bundled = Artifact(stage / main_name, copy.deepcopy(meta), [stage / n for n in extra_names]).save()
        names = [main_name, *extra_names, bundled.sidecar.name]
        if labels is not None:
            (stage / LABELS).write_text("\n".join(labels) + "\n", encoding="utf-8")
            names.append(LABELS)
        manifest = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "edgeres_version": __version__,
            "created": now_utc(),
            "target": {"name": target.name, "aliases": list(target.aliases), "backend": target.backend,
                       "description": target.description},
            "backend": {"name": target.backend, "version": backend_version},
            "precision": artifact.precision,
            "execution_precision": meta.get("execution_precision"),
            "model": {"family": "resnet", **model_info},
            "input": {
                **_io_spec(meta.get("input"), {"name": "input", "shape": list(preprocess.input_shape("batch")),
                                               "dtype": "float32"}),
                "layout": preprocess.layout,
                "batch": {"min": target.batch_profile.min, "opt": target.batch_profile.opt,
                          "max": target.batch_profile.max},
                "preprocess": preprocess.to_dict(),
            },
            "output": {**_io_spec(meta.get("output"), {"name": "logits", "dtype": "float32"}),
                       "kind": "logits", "postprocess": "softmax"},
            "labels": labels,
            "labels_file": LABELS if labels is not None else None,
            "artifact": {"path": main_name, "files": extra_names, "metadata": bundled.sidecar.name},
            "requirements": device_requirements(get_backend(target.backend), backend_version, meta, target.device),
            "metrics": metrics,
            "files": file_entries(stage, names),
        }
        write_json_atomic(stage / MANIFEST, seal(manifest))
        write_tar_gz(stage, tarball_of(out_dir), arcname=out_dir.name)
    return out_dir


def bundle_inputs(artifact: Artifact, labels_file: str | os.PathLike[str] | None = None
                  ) -> tuple[dict[str, Any], PreprocessSpec, list[str] | None]:
    """What ``make_bundle`` needs besides the artifact, read from the artifact's own metadata:
    (model_info, preprocessing, labels). ``labels_file``: one label per line, overriding the
    metadata's class names."""
    meta = artifact.metadata
    model_info = {k: meta[k] for k in ("depth", "num_classes", "input_size", "checkpoint_sha256", "weights")
                  if meta.get(k) is not None}
    if meta.get("preprocess"):
        preprocess = PreprocessSpec.from_dict(meta["preprocess"])
    else:
        shape = (meta.get("input") or {}).get("shape") or []
        size = meta.get("input_size") or (shape[-1] if shape and isinstance(shape[-1], int) else None)
        if not size:
            raise EdgeresError(f"{artifact.path} records neither its preprocessing nor its input size; "
                               "re-export it with edgeres")
        preprocess = PreprocessSpec.for_size(int(size))
    labels: list[str] | None = None
    if labels_file is not None:
        from edgeres.classes import read_labels_file

        labels = read_labels_file(labels_file)
    elif meta.get("classes"):
        labels = [str(c) for c in meta["classes"]]
    return model_info, preprocess, labels


def package_artifact(artifact_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                     target: Target | str | None = None, labels_file: str | os.PathLike[str] | None = None,
                     targets_dir: str | os.PathLike[str] | None = None,
                     metrics: dict[str, Any] | None = None) -> Path:
    """``edgeres package``: an artifact file (with its metadata sidecar) into a bundle. The target
    defaults to the one the artifact was built for."""
    artifact = Artifact.load(artifact_path)
    target = target or artifact.metadata.get("target")
    if not target:
        raise EdgeresError(f"{artifact_path} was not built for a particular target: name one with --target")
    model_info, preprocess, labels = bundle_inputs(artifact, labels_file)
    return make_bundle(artifact, out_dir, target=target, model_info=model_info, preprocess=preprocess,
                       labels=labels, metrics=metrics, targets_dir=targets_dir)
