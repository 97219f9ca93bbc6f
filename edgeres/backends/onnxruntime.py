"""ONNX Runtime: the reference backend and the generic CPU target (x86 and ARM boards alike).

Runs FP32 ONNX and explicitly quantized (Q/DQ) INT8 ONNX on the CPU execution provider.
Torch-free: onnxruntime and numpy at run time; ``build`` also reads the graph with ``onnx``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.artifact import Artifact
from edgeres.backends.base import Availability, Backend, BuildSpec, LayerTime, Runner, RunnerInfo
from edgeres.errors import EdgeresError
from edgeres.fileio import atomic_path, sha256_file
from edgeres.hostinfo import cpu_name, physical_cores
from edgeres.optional import require, version_of

# [options] a target file may set for this backend (key -> type), checked by edgeres.targets
OPTIONS: dict[str, type] = {
    "threads": int,             # intra-op threads; 0 = ONNX Runtime's default (one per physical core)
    "inter_op_threads": int,    # threads between independent nodes (parallel execution mode only); 0 = default
    "graph_optimization": str,  # disable | basic | extended | layout | all
    "execution_mode": str,      # sequential | parallel
    "save_optimized": bool,     # also write the graph as ONNX Runtime optimized it, and load that one
}
DEFAULT_OPTIONS: dict[str, Any] = {"threads": 0, "inter_op_threads": 0, "graph_optimization": "all",
                                   "execution_mode": "sequential", "save_optimized": False}
OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "layout": "ORT_ENABLE_LAYOUT", "all": "ORT_ENABLE_ALL"}
EXEC_MODES = {"sequential": "ORT_SEQUENTIAL", "parallel": "ORT_PARALLEL"}
PROVIDER = "CPUExecutionProvider"
PRECISIONS = ("fp32", "int8")
INT8_CONV_KERNELS = ("QLinearConv", "ConvInteger", "NhwcQLinearConv")
TIMED = "host wall clock around session.run: numpy in, numpy out (inputs already in host memory)"


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in; unknown keys, wrong types and bad values are an ``EdgeresError``."""
    merged = dict(DEFAULT_OPTIONS)
    for key, value in options.items():
        if key not in OPTIONS:
            raise EdgeresError(f"unknown ONNX Runtime option '{key}': choose from {', '.join(OPTIONS)}")
        kind = OPTIONS[key]
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise EdgeresError(f"ONNX Runtime option '{key}' must be a {kind.__name__}, got {value!r}")
        merged[key] = value
    if merged["threads"] < 0 or merged["inter_op_threads"] < 0:
        raise EdgeresError("ONNX Runtime thread counts must be 0 (default) or positive")
    if merged["graph_optimization"] not in OPT_LEVELS:
        raise EdgeresError(f"ONNX Runtime graph_optimization must be one of {', '.join(OPT_LEVELS)}, "
                           f"got {merged['graph_optimization']!r}")
    if merged["execution_mode"] not in EXEC_MODES:
        raise EdgeresError(f"ONNX Runtime execution_mode must be sequential or parallel, "
                           f"got {merged['execution_mode']!r}")
    return merged


def _session_options(ort: Any, options: dict[str, Any], optimized_model_path: Path | None = None) -> Any:
    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only
    if options["threads"]:
        so.intra_op_num_threads = int(options["threads"])
    if options["inter_op_threads"]:
        so.inter_op_num_threads = int(options["inter_op_threads"])
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[options["graph_optimization"]])
    so.execution_mode = getattr(ort.ExecutionMode, EXEC_MODES[options["execution_mode"]])
    if optimized_model_path is not None:
        so.optimized_model_filepath = str(optimized_model_path)
    return so


def _dims(shape: list[Any]) -> str:
    return "x".join(str(d) for d in shape)


class ORTRunner(Runner):
    """An ONNX Runtime session behind the Runner interface: NCHW float32 in, logits out."""

    def __init__(self, path: str | os.PathLike[str], *, precision: str = "fp32", label: str | None = None,
                 disabled_optimizers: Sequence[str] = (), **options: Any) -> None:
        """``disabled_optimizers``: ORT graph passes to skip; a Q/DQ graph made for ONNX Runtime's
        INT8 kernels records them in its metadata (see ``edgeres.quantize.qdq``)."""
        ort = require("onnxruntime", "running ONNX models")
        self.options = check_options(options)
        self.path = Path(path)
        try:
            self.session = ort.InferenceSession(str(self.path), _session_options(ort, self.options),
                                                providers=[PROVIDER], disabled_optimizers=list(disabled_optimizers))
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EdgeresError(f"ONNX Runtime cannot load {self.path}: {first} (corrupt, truncated or not an ONNX "
                               "model?)") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise EdgeresError(f"{self.path} has {len(inputs)} inputs; edgeres models take one image batch")
        self.input_name = inputs[0].name
        self.input_shape: list[Any] = list(inputs[0].shape)
        self.output_name = self.session.get_outputs()[0].name
        fixed = self.input_shape[0] if isinstance(self.input_shape[0], int) else None
        threads = self.options["threads"]
        self.info = RunnerInfo(
            backend="onnxruntime", backend_version=ort.__version__, precision=precision, timed=TIMED,
            device=cpu_name(), threads=int(threads) if threads else physical_cores(),  # ORT's default: one per core
            fixed_batch=fixed,
            extra={"provider": PROVIDER, "threads_default": not threads, "graph_optimization": self.options["graph_optimization"],
                   "execution_mode": self.options["execution_mode"],
                   "disabled_optimizers": list(disabled_optimizers),
                   "input": {"name": self.input_name, "shape": self.input_shape}, "model": label or self.path.name})

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = self.check_input(batch)
        try:
            return self.session.run([self.output_name], {self.input_name: batch})[0]  # type: ignore[no-any-return]
        except Exception as exc:  # noqa: BLE001
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EdgeresError(f"ONNX Runtime failed on a batch of shape {_dims(list(batch.shape))}: {first}") from None

    def profile(self, batch: int = 1, runs: int = 20) -> list[LayerTime]:
        """ORT's own per-kernel times (its profiler's JSON) on a second session of the same model."""
        import onnxruntime as ort

        from edgeres.backends.onnxruntime_profile import profile_session

        def make_session(prefix: str) -> Any:
            so = _session_options(ort, self.options)
            so.enable_profiling, so.profile_file_prefix = True, prefix
            return ort.InferenceSession(str(self.path), so, providers=[PROVIDER],
                                        disabled_optimizers=self.info.extra["disabled_optimizers"])

        shape = tuple(d if isinstance(d, int) and d > 0 else batch for d in self.input_shape)
        return profile_session(make_session, self.input_name, (batch, *shape[1:]), runs)

    def throughput_modes(self, batch_sizes: Sequence[int]) -> list[tuple[int, Any]]:
        """The ways to spend the cores that ``edgeres.validate.throughput`` probes: the smallest and
        largest batch x (this session with all its threads, one request at a time | one request
        per thread on a single-thread session, the cores split between requests)."""
        from edgeres.validate.throughput import ThreadQueue

        fixed = self.info.fixed_batch
        sizes = [fixed] if fixed else sorted({min(batch_sizes), max(batch_sizes)})
        threads = int(self.info.threads or 1)
        whole = {"mode": f"sync, 1 session of {threads} threads", "streams": None, "threads": threads}
        split = {"mode": f"{threads} concurrent runs of a 1-thread session", "streams": None, "threads": 1}
        modes: list[tuple[int, Any]] = []
        for size in sizes:
            modes.append((size, lambda: (ThreadQueue(self, 1), whole)))
            if threads > 1:
                modes.append((size, lambda: (ThreadQueue(self._single_thread_run(), threads), split)))
        return modes

    def _single_thread_run(self) -> Any:
        """``session.run`` of a second session of this model with one intra-op thread (made once;
        ONNX Runtime sessions take concurrent runs)."""
        if self.__dict__.get("_single") is None:
            import onnxruntime as ort

            so = _session_options(ort, {**self.options, "threads": 1})
            self._single = ort.InferenceSession(str(self.path), so, providers=[PROVIDER],
                                                disabled_optimizers=self.info.extra["disabled_optimizers"])
        session, feed, fetch = self._single, self.input_name, [self.output_name]
        return lambda batch: session.run(fetch, {feed: batch})[0]

    def close(self) -> None:
        self.__dict__.pop("session", None)
        self.__dict__.pop("_single", None)


def executed_precision(path: Path, options: dict[str, Any], disabled: Sequence[str], optimized: Path) -> dict[str, Any]:
    """What ONNX Runtime really runs: a Q/DQ graph executes INT8 only where its optimizer fuses
    ``DQ -> Conv -> Q`` into an INT8 kernel (QLinearConv, ConvInteger); elsewhere it simulates
    quantization in float. Read from the graph as optimized here (written to ``optimized``)."""
    import onnxruntime as ort

    from edgeres.onnxutil import load_onnx, op_counts

    ort.InferenceSession(str(path), _session_options(ort, options, optimized), providers=[PROVIDER],
                         disabled_optimizers=list(disabled))
    ops = op_counts(load_onnx(optimized))
    int8 = sum(ops.get(op, 0) for op in INT8_CONV_KERNELS)
    convs = int8 + ops.get("Conv", 0) + ops.get("FusedConv", 0) + ops.get("NhwcFusedConv", 0)
    fraction = int8 / convs if convs else 0.0
    if not int8:
        executed = "fp32" if not ops.get("DequantizeLinear") else "fp32 (simulated int8)"
    else:
        executed = "int8" if int8 == convs else f"int8 {fraction:.0%} of convs"
    return {"execution_precision": executed, "int8_conv_fraction": round(fraction, 4)}


class ONNXRuntimeBackend(Backend):
    name = "onnxruntime"
    options = OPTIONS
    loads_kinds = ("onnx",)  # exported and quantized ONNX files run here as they are
    requirement_keys = ("execution_provider", "providers")
    python_packages = ("numpy", "pillow", "onnxruntime")

    def int8_placement(self, target: Any) -> str | None:
        """ONNX Runtime fuses Q/DQ into its INT8 kernels only in its own placement."""
        return "onnxruntime"

    def available(self) -> Availability:
        version = version_of("onnxruntime")
        if version is None:
            return Availability(False, "onnxruntime is not installed: pip install 'edgeres[onnxruntime]'")
        import onnxruntime as ort

        return Availability(True, version=version, details={"providers": ",".join(ort.get_available_providers())})

    def unsupported(self, precision: str, target: Any) -> str | None:
        if precision not in PRECISIONS:
            return f"ONNX Runtime runs fp32 and int8 (Q/DQ) graphs, not {precision}"
        return None

    def build(self, graph: Path, spec: BuildSpec) -> Artifact:
        """Copy the FP32 or Q/DQ INT8 ``graph`` into ``spec.out_dir`` as this target's artifact.

        ONNX Runtime optimizes graphs when it loads them, so "building" is a checked copy plus
        metadata; with ``save_optimized`` the graph as optimized here is written beside it.
        """
        from edgeres.onnxutil import graph_precision, load_onnx, onnx_input_spec, onnx_output_spec, source_metadata

        available = self.available()
        if not available.ok:
            raise EdgeresError(available.reason)
        if spec.precision not in PRECISIONS:
            raise EdgeresError(f"ONNX Runtime runs fp32 and int8 (Q/DQ) graphs; precision {spec.precision} is not "
                               "offered on this target")
        graph = Path(graph)
        model = load_onnx(graph)
        found = graph_precision(model)
        if found != spec.precision:
            hint = " (quantize it first: edgeres quantize)" if spec.precision == "int8" else ""
            raise EdgeresError(f"{graph.name} is a {found} graph but {spec.precision} was asked for{hint}")
        given = {**spec.target.options, **spec.options}
        options = check_options({k: v for k, v in given.items() if v is not None})
        source_sha = sha256_file(graph)
        out = spec.out_dir / f"onnxruntime_{spec.precision}.onnx"
        optimized = out.with_name(out.stem + ".optimized.onnx") if options["save_optimized"] else None

        reused = self._reusable(out, source_sha, options)
        if reused is not None:
            return reused

        source_meta = source_metadata(graph, model)
        metadata = {k: v for k, v in source_meta.items()
                    if k not in ("sha256", "files", "backend", "backend_version", "target", "precision", "reused")}
        metadata.update({
            "backend": self.name,
            "backend_version": available.version,
            "precision": spec.precision,
            "target": spec.target.name,
            "input": onnx_input_spec(model),
            "output": onnx_output_spec(model),
            "batch_profile": str(spec.batch),
            "options": options,
            "provider": PROVIDER,
            "source": graph.name,
            "source_sha256": source_sha,
            "source_backend": source_meta.get("backend"),
        })
        del model
        spec.out_dir.mkdir(parents=True, exist_ok=True)
        disabled = (metadata.get("onnxruntime") or {}).get("disabled_optimizers", [])
        with atomic_path(out) as tmp:
            shutil.copyfile(graph, tmp)
        with tempfile.TemporaryDirectory(prefix="edgeres-ort-") as scratch:
            as_optimized = Path(scratch) / "optimized.onnx"
            metadata.update(executed_precision(out, options, disabled, as_optimized))
            files: list[Path] = []
            if optimized is not None:
                with atomic_path(optimized) as tmp:
                    shutil.copyfile(as_optimized, tmp)
                files.append(optimized)
                metadata["optimized_model"] = optimized.name
        return Artifact(path=out, metadata=metadata, files=files).save()

    @staticmethod
    def _reusable(out: Path, source_sha: str, options: dict[str, Any]) -> Artifact | None:
        if not out.is_file() or not Artifact.sidecar_of(out).is_file():
            return None
        try:
            existing = Artifact.load(out)
            existing.verify()
        except EdgeresError:
            return None
        if existing.metadata.get("source_sha256") != source_sha or existing.metadata.get("options") != options:
            return None
        existing.metadata["reused"] = True
        return existing

    def load_frames(self, artifact: Artifact, spec: Any, order: str, shape: tuple[int, int, int, int],
                    threads: int | None = None) -> tuple[Any, dict[str, Any]]:
        """The ONNX with edgeres's frame input in front (``edgeres.export.frame_input``), in one session."""
        import onnx
        import onnxruntime as ort

        from edgeres.export.frame_input import FRAME_INPUT, add_frame_input

        meta = artifact.metadata
        options = {k: v for k, v in (meta.get("options") or {}).items() if k in OPTIONS and k != "save_optimized"}
        if threads:
            options["threads"] = threads
        options = check_options(options)
        model = add_frame_input(onnx.load(str(artifact.path)), spec, order)
        disabled = (meta.get("onnxruntime") or {}).get("disabled_optimizers", [])
        session = ort.InferenceSession(model.SerializeToString(), _session_options(ort, options),
                                       providers=[PROVIDER], disabled_optimizers=list(disabled))
        output = session.get_outputs()[0].name

        def run(frames: np.ndarray) -> np.ndarray:
            return session.run([output], {FRAME_INPUT: frames})[0]  # type: ignore[no-any-return]

        return run, {"backend": self.name, "how": "ONNX ops at the graph input", "options": options}

    def load(self, artifact: Artifact, **options: Any) -> ORTRunner:
        """A runner for an ONNX artifact (from export, quantize or this backend's build).

        ``options`` override the ones recorded at build time (e.g. ``threads=2``).
        """
        artifact.verify()
        merged = {k: v for k, v in (artifact.metadata.get("options") or {}).items() if k in OPTIONS}
        merged.update(options)
        merged.pop("save_optimized", None)
        path = artifact.path
        optimized = artifact.metadata.get("optimized_model")
        if optimized and (artifact.path.parent / optimized).is_file() and "graph_optimization" not in options:
            path = artifact.path.parent / optimized
            merged["graph_optimization"] = "disable"  # already optimized offline, for this CPU
        precision = str(artifact.metadata.get("precision") or "")
        if not precision:
            try:
                from edgeres.onnxutil import graph_precision

                precision = graph_precision(path)
            except EdgeresError:
                precision = "unknown"
        disabled = (artifact.metadata.get("onnxruntime") or {}).get("disabled_optimizers", [])
        runner = ORTRunner(path, precision=precision, label=artifact.path.name, disabled_optimizers=disabled, **merged)
        runner.info.execution_precision = artifact.metadata.get("execution_precision")
        return runner


BACKEND = ONNXRuntimeBackend()
