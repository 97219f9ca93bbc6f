"""What ``edgeres validate`` and ``edgeres bench`` do: open an artifact or a bundle, then measure
it with ``edgeres.measure``'s pieces (run and compare; time).

Torch-free. ``bench`` opens what it times through ``OPENERS``: the first opener that
recognizes the path wins, so a bundle (folder or .tar.gz) and a model edgeres did not write
(an IR or ONNX with no sidecar, ``edgeres.foreign``) get their own openers beside the artifact
one without touching this code's callers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres import limits
from edgeres.artifact import Artifact
from edgeres.backends.base import Runner
from edgeres.errors import EdgeresError
from edgeres.limits import parse_batches
from edgeres.measure import label_map, run_and_compare, time_batches
from edgeres.validate.latency import DEFAULT_MIN_RUNS, DEFAULT_MIN_SECONDS, LatencyResult, current_rss_mb
from edgeres.validate.metrics import AccuracyResult, collect_logits
from edgeres.validate.runner import artifact_fixed_batch, artifact_input_shape, load_runner
from edgeres.validate.stats import LossInterval


@dataclass
class Opened:
    """Something ``bench`` can time: a runner, its input shape (C, H, W) and a description."""

    runner: Runner
    input_shape: tuple[int, int, int]
    fixed_batch: int | None = None
    description: dict[str, Any] = field(default_factory=dict)
    close: Callable[[], None] | None = None


Opener = Callable[[Path, dict[str, Any]], "Opened | None"]


def open_artifact(path: Path, options: dict[str, Any]) -> Opened | None:
    """An artifact file with its sidecar (``model.onnx`` + ``model.onnx.json``, ...)."""
    if not path.is_file() or not Artifact.sidecar_of(path).is_file():
        return None
    artifact = Artifact.load(path)
    runner = load_runner(artifact, **_own_backend(path, artifact.backend, options))
    meta = artifact.metadata
    return Opened(runner=runner, input_shape=artifact_input_shape(artifact), fixed_batch=artifact_fixed_batch(artifact),
                  description={"artifact": str(path), "backend": meta.get("backend"), "precision": meta.get("precision"),
                               "target": meta.get("target"), "model": meta.get("model")})


def open_bundle(path: Path, options: dict[str, Any]) -> Opened | None:
    """A bundle folder or its .tar.gz (see ``edgeres.bundle``): checksums verified, own backend."""
    from edgeres.bundle.runtime import is_bundle, load_bundle

    if not is_bundle(path):
        return None
    bundle = load_bundle(path)
    try:
        artifact = bundle.artifact()
        runner = bundle.load_runner(**_own_backend(path, bundle.backend, options))
    except BaseException:
        bundle.close()
        raise
    m = bundle.manifest
    return Opened(runner=runner, input_shape=bundle.sample_shape, fixed_batch=artifact_fixed_batch(artifact),
                  description={"artifact": str(path), "bundle": str(path), "backend": bundle.backend,
                               "precision": bundle.precision, "target": bundle.target, "model": m.get("model")},
                  close=bundle.close)


def open_foreign(path: Path, options: dict[str, Any]) -> Opened | None:
    """A model edgeres did not write: an OpenVINO IR (.xml + .bin) or an ONNX, no sidecar (see
    ``edgeres.foreign``); ``options["backend"]`` picks the runtime of an ONNX."""
    from edgeres.foreign import foreign_artifact

    options = dict(options)
    artifact = foreign_artifact(path, options.pop("backend", None))
    if artifact is None:
        return None
    runner = load_runner(artifact, **options)
    meta = artifact.metadata
    runner.input_dtype = meta["input"]["dtype"]  # bench feeds what the model takes (uint8 for in-graph preprocessing)
    return Opened(runner=runner, input_shape=artifact_input_shape(artifact), fixed_batch=artifact_fixed_batch(artifact),
                  description={"artifact": str(path), "foreign": True, "backend": meta["backend"],
                               "precision": meta["precision"], "precision_source": meta["precision_source"],
                               "input": meta["input"], "target": None, "model": path.name})


def _own_backend(path: Path, backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """The runner options for an edgeres artifact, which runs on the backend it was built for."""
    if options.get("backend") not in (None, backend):
        raise EdgeresError(f"{path} is an edgeres {backend} artifact: --backend only picks the runtime of a model "
                           "edgeres did not write")
    return {k: v for k, v in options.items() if k != "backend"}


# Tried in order: the first opener that recognizes the path wins.
OPENERS: list[Opener] = [open_bundle, open_artifact, open_foreign]


def open_for_bench(path: str | os.PathLike[str], **options: Any) -> Opened:
    path = Path(path)
    if not path.exists():
        raise EdgeresError(f"{path} does not exist")
    options = {k: v for k, v in options.items() if v is not None}
    for opener in OPENERS:
        opened = opener(path, options)
        if opened is not None:
            return opened
    if path.is_file():
        raise EdgeresError(f"{path} is not a model bench can time: it takes artifacts written by edgeres (with "
                           f"their {Artifact.sidecar_of(path).name}), bundles, OpenVINO IRs (.xml + .bin) and ONNX files")
    found = sorted(str(m) for m in _artifacts_in(path))
    hint = f": it holds {', '.join(found[:6])}" + (" ..." if len(found) > 6 else "") if found else ""
    raise EdgeresError(f"{path} is not an artifact edgeres can time (name the model file, e.g. DIR/model.onnx){hint}")


def _artifacts_in(folder: Path) -> list[Path]:
    """Model files with an edgeres sidecar in ``folder`` and the folders below it (a build's output)."""
    return [m for m in folder.rglob("*") if m.suffix in (".onnx", ".xml", ".engine", ".plan")
            and Artifact.sidecar_of(m).is_file() and ".cache" not in m.parts]


def bench(path: str | os.PathLike[str], batch_sizes: Sequence[int] | str | None = None, *,
          min_runs: int = DEFAULT_MIN_RUNS, min_seconds: float = DEFAULT_MIN_SECONDS, warmup: int = 10,
          threads: int | None = None, throughput: bool = True, wait_quiet: float = 0.0,
          retries: int = 0, progress: bool = True, backend: str | None = None) -> dict[str, Any]:
    """Time an artifact: a dict with "runner" (its info), "results" (LatencyResult per batch),
    "throughput" (a ThroughputResult in the backend's throughput mode, or None), "attempts" and
    "rss_before_load_mb" (resident memory of this process before the model was loaded).

    Up to ``wait_quiet`` seconds are spent waiting for the CPU to be quiet first; a measurement
    taken while the machine was busy is repeated up to ``retries`` times and the quietest kept
    ("busy", "kept_attempt", "tries": see ``edgeres.validate.quiet.quietest``). ``backend`` picks
    the runtime of a model edgeres did not write (an ONNX on "openvino")."""
    from edgeres.validate.quiet import quietest
    from edgeres.validate.throughput import measure_throughput

    limits.check("the minimum runs", min_runs, limits.COUNT)
    limits.check("the minimum seconds", min_seconds, limits.WAIT_SECONDS)
    limits.check("the warm-up runs", warmup, limits.WARMUP)
    limits.check_optional("the threads", threads, limits.THREADS)
    rss_before = current_rss_mb()
    opened = open_for_bench(path, threads=threads, backend=backend)
    try:
        sizes = parse_batches(batch_sizes) if batch_sizes is not None else [opened.fixed_batch or 1]
        if opened.fixed_batch and any(b != opened.fixed_batch for b in sizes):
            raise EdgeresError(f"{Path(path).name} was built for batch {opened.fixed_batch} only: use --batch "
                               f"{opened.fixed_batch}, or " + ("convert it with a dynamic batch" if
                                                               opened.description.get("foreign") else
                                                               "export with --batch dynamic"))
        def measure() -> tuple[list[LatencyResult], Any]:
            results = time_batches(opened.runner, opened.input_shape, sizes,
                                   f"bench {Path(path).name}" if progress else None,
                                   min_runs=min_runs, min_seconds=min_seconds, warmup=warmup)
            tput = measure_throughput(opened.runner, opened.input_shape, tuple(sizes),
                                      min_seconds=min_seconds) if throughput else None
            return results, tput

        (results, tput), attempts = quietest(
            measure, lambda m: [r.load for r in m[0]] + ([m[1].load] if m[1] else []), retries=retries,
            wait_s=wait_quiet, say=(lambda line: print(f"bench: {line}", file=sys.stderr)) if progress else _silent)
        info = dict(opened.runner.info)
    finally:
        opened.runner.close()
        if opened.close:
            opened.close()
    return {**opened.description, "input_shape": list(opened.input_shape), "runner": info,
            "rss_before_load_mb": rss_before, "results": results, "throughput": tput, **attempts}


def _silent(line: str) -> None:
    pass


def _preprocess_of(artifact: Artifact) -> Any:
    from edgeres.data.preprocess import PreprocessSpec

    meta = artifact.metadata.get("preprocess")
    if meta:
        return PreprocessSpec.from_dict(meta)
    _, _, size = artifact_input_shape(artifact)
    return PreprocessSpec.for_size(size)


@dataclass
class Validation:
    artifact: str
    dataset: dict[str, Any]
    accuracy: AccuracyResult
    runner: dict[str, Any]
    reference: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def loss(self) -> LossInterval | None:
        """What the artifact loses against the reference (top-1 drop with labels, else agreement), with its 95% interval."""
        return self.accuracy.loss(labeled=self.accuracy.top1 is not None)

    def to_dict(self) -> dict[str, Any]:
        return {"artifact": self.artifact, "reference": self.reference, "dataset": self.dataset,
                "accuracy": self.accuracy.to_dict(), "loss": self.loss.to_dict() if self.loss else None,
                "runner": self.runner, "notes": list(self.notes)}


def validate(path: str | os.PathLike[str], val: Any, *, reference: str | os.PathLike[str] | None = None,
             batch_size: int = 32, size: int | None = None, seed: int = 0, threads: int | None = None,
             progress: bool = True) -> Validation:
    """Accuracy of an artifact on ``val`` (a source for ``edgeres.data.open_set``, or an opened
    set), and its fidelity to ``reference`` (another artifact) on the same inputs. Either may be
    a bundle (folder or .tar.gz), as ``bench`` takes: its verified artifact is what runs."""
    limits.check("the batch size", batch_size, limits.BATCH)
    limits.check_optional("the sample size", size, limits.COUNT)
    with ExitStack() as bundles:
        artifact = _artifact_in(path, bundles)
        ref_artifact = _artifact_in(reference, bundles) if reference is not None else None
        return _validate(artifact, ref_artifact, val, (str(path), reference), batch_size=batch_size, size=size,
                         seed=seed, threads=threads, progress=progress)


def _artifact_in(path: str | os.PathLike[str], bundles: ExitStack) -> Artifact:
    """The artifact at ``path``, or inside the bundle at ``path`` (open until ``bundles`` closes)."""
    from edgeres.bundle.runtime import is_bundle, load_bundle

    if is_bundle(path):
        return bundles.enter_context(load_bundle(path)).artifact()
    return Artifact.load(path)


def _validate(artifact: Artifact, ref_artifact: Artifact | None, val: Any, names: tuple[str, Any], *,
              batch_size: int, size: int | None, seed: int, threads: int | None, progress: bool) -> Validation:
    path, reference = names
    if ref_artifact is not None and artifact_input_shape(ref_artifact) != artifact_input_shape(artifact):
        raise EdgeresError(f"the reference takes {artifact_input_shape(ref_artifact)} inputs but {Path(path).name} "
                           f"takes {artifact_input_shape(artifact)}: compare models built from the same export")
    if hasattr(val, "batches"):
        dataset = val
    else:
        from edgeres.data import open_set

        dataset = open_set(val, size=size, seed=seed, preprocess=_preprocess_of(artifact))
    notes: list[str] = []
    remap = label_map(getattr(dataset, "classes", None), artifact.metadata.get("classes"))
    if remap is not None:
        notes.append("the set's class folders are ordered differently from the model's classes: labels remapped "
                     "by class name")
    # The set is read in the same deterministic order for both models, so rows line up.
    ref_logits = None
    if ref_artifact is not None:
        with load_runner(ref_artifact, threads=threads) as ref_runner:
            ref_logits, _ = collect_logits(ref_runner, dataset, batch_size,
                                           progress=f"reference {Path(str(reference)).name}" if progress else None)
    with load_runner(artifact, threads=threads) as runner:
        accuracy = run_and_compare(runner, dataset, reference=ref_logits, remap=remap, batch_size=batch_size,
                                   progress=f"validate {Path(path).name}" if progress else None)
        info = dict(runner.info)
    if accuracy.top1 is None:
        notes.append("the set has no labels: only agreement with the reference is measured" if ref_logits is not None
                     else "the set has no labels and no --reference was given: nothing to score but the logits")
    describe = dataset.describe() if hasattr(dataset, "describe") else {"name": str(getattr(dataset, "name", val))}
    return Validation(artifact=str(path), dataset=describe, accuracy=accuracy, runner=info,
                      reference=str(reference) if reference is not None else None, notes=notes)


def format_bench(payload: dict[str, Any]) -> str:
    from edgeres.validate.latency import format_latency
    from edgeres.validate.quiet import latency_mode, load_line

    info = payload.get("runner") or {}
    results: list[LatencyResult] = payload["results"]
    c, h, w = payload["input_shape"]
    head = (f"bench {payload.get('artifact')}: {info.get('backend', '?')} {info.get('backend_version', '')} on "
            f"{info.get('device', '?')}, {info.get('precision', payload.get('precision'))}, input {c}x{h}x{w}"
            + ("" if (payload.get("input") or {}).get("dtype", "float32") == "float32" else
               f" {payload['input']['dtype']}"))
    if results:
        head += (f"\nlatency: {latency_mode(info)}; warm-up {results[0].warmup} runs, then timed runs "
                 "(n per batch size below)")
    if payload.get("foreign"):
        head += f"\nprecision: {payload.get('precision')}, {payload.get('precision_source')}"
        if info.get("inference_precision_readback"):
            head += (f"; it executes {info.get('execution_precision')} (inference precision "
                     f"{info['inference_precision_readback']})")
    text = head + "\n" + format_latency(results)
    tput = payload.get("throughput")
    if tput is not None:
        text += f"\nthroughput (its own measurement): {tput.label()}\n  timed: {tput.timed}"
        text += f"\n  load: {load_line(tput.load)}"
        if tput.load.get("warning"):
            text += f"\n  WARNING: {tput.load['warning']}"
    if payload.get("attempts", 1) > 1:
        text += (f"\nmeasured {payload['attempts']} times (the machine was busy); attempt "
                 f"{payload.get('kept_attempt')}, the quietest, is shown")
    return text
