"""The one interface every backend implements, and the small typed base of its runners.

A backend builds an artifact from an ONNX graph and loads it into a runner, and it
declares what the pipeline must know to drive it: where its INT8 comes from, whether
this host can build for a target or a device kit is needed, where it times, what a
bundle of its artifacts needs on the device, and which artifact kinds it loads. The
pipeline asks these questions; it never names a backend. Backends never import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike

from edgeres.artifact import Artifact, BatchProfile
from edgeres.errors import EdgeresError

if TYPE_CHECKING:
    from typing_extensions import Self

    from edgeres.targets import Target

PRECISIONS = ("fp32", "bf16", "fp16", "int8")


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here; when not, ``reason`` says why and what to do."""

    ok: bool
    reason: str = ""
    version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AccuracyControl:
    """Accuracy-controlled INT8 in a backend's own quantizer (OpenVINO's NNCF): the labelled
    set to check on and the points of top-1 the INT8 model may lose."""

    validation: Any  # an edgeres.data set
    budget: float


@dataclass
class BuildSpec:
    """What to build: for which target, in which precision, from which calibration data, where."""

    target: Target
    precision: str
    out_dir: Path
    batch: BatchProfile = field(default_factory=BatchProfile)
    calibration: Any = None  # an edgeres.data set, for INT8 builds that calibrate in the backend
    accuracy_control: AccuracyControl | None = None
    options: dict[str, Any] = field(default_factory=dict)  # per-build overrides of target options

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise EdgeresError(f"unknown precision {self.precision!r}: choose from {', '.join(PRECISIONS)}")
        self.out_dir = Path(self.out_dir)

    def option(self, key: str, default: Any = None) -> Any:
        """A backend option: this build's override, else the target's, else ``default``."""
        if key in self.options:
            return self.options[key]
        return self.target.options.get(key, default)


@dataclass
class RunnerInfo(Mapping[str, Any]):
    """What a runner is and what its timings mean. Typed fields for what edgeres reads
    (batch limits, precision, device, threads, what is timed); ``extra`` for what a backend
    adds for people (cache hits, layer precisions...). Reads as one flat mapping, for JSON."""

    backend: str
    precision: str
    timed: str
    backend_version: str | None = None
    device: str | None = None
    threads: Any = None
    fixed_batch: int | None = None
    max_batch: int | None = None
    execution_precision: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        typed = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**typed, **self.extra}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __setitem__(self, key: str, value: Any) -> None:
        if key in {f.name for f in fields(self)} and key != "extra":
            setattr(self, key, value)
        else:
            self.extra[key] = value


@dataclass(frozen=True)
class LayerTime:
    """One layer as the runtime executed it: its name in the runtime's graph, the kernel it
    chose and the precision it ran in, and its median time per inference (ms)."""

    name: str
    op: str             # the runtime's layer type: QLinearConv, Convolution, ...
    kernel: str         # the implementation: an OpenVINO exec type, ORT's op + provider, a TensorRT tactic
    precision: str      # int8, fp32, bf16, fp16, or "" when the runtime does not say
    ms: float
    min_ms: float | None = None  # the fastest run: the kernel's cost when nothing preempted it

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Runner:
    """A loaded artifact: NCHW float32 in, logits out. Close it when done (or use ``with``)."""

    info: RunnerInfo
    input_shape: list[Any]  # from the artifact: ints, or a name/None for a dynamic dimension
    # what ``time_batch`` can time, set through ``timing``: "host" wall clock, and for some "device"
    timing_modes: tuple[str, ...] = ("host",)
    # what ``check_input`` casts a batch to: float32 for what edgeres builds; a model it did not
    # write may take uint8 (preprocessing in the graph) or float16 (see ``edgeres.foreign``)
    input_dtype: DTypeLike = "float32"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Free what the runner holds (sessions, device memory); safe to call twice."""

    def profile(self, batch: int = 1, runs: int = 20) -> list[LayerTime]:
        """Per-layer time on the target as the runtime measures it, in execution order (median of
        ``runs`` inferences of a ``batch`` after one warm-up). Backends that can, override it."""
        raise EdgeresError(f"{type(self).__name__} cannot report per-layer times (its runtime has no profiler "
                           "edgeres reads)")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_input(self, batch: Any) -> np.ndarray:
        """``batch`` as C-contiguous ``input_dtype``, or a clear error when its shape does not fit."""
        batch = np.asarray(batch)
        want = list(self.input_shape)
        if batch.ndim != len(want):
            raise EdgeresError(f"model expects a {len(want)}-d batch {_dims(want)}, got shape {_dims(batch.shape)}")
        for w, g in zip(want[1:], batch.shape[1:]):
            if isinstance(w, int) and w > 0 and w != g:
                raise EdgeresError(f"a batch of {_dims(batch.shape)} does not fit (its image shape does not match): "
                                   f"model expects {_dims(want[1:])} inputs, got {_dims(batch.shape[1:])}: preprocess "
                                   "to the model's input size (its preprocessing is in the artifact metadata)")
        fixed = self.info.fixed_batch
        if fixed and fixed != batch.shape[0]:
            raise EdgeresError(f"model was exported for batch {fixed}, got a batch of {batch.shape[0]}: feed "
                               f"batches of {fixed} or export again with --batch dynamic")
        return np.ascontiguousarray(batch, dtype=self.input_dtype)


def _dims(shape: Any) -> str:
    return "x".join(str(d) for d in shape)


class Backend:
    """What the pipeline needs from a backend. Subclass it, give it a ``name``, implement
    ``available``, ``build`` and ``load``, and register it (``edgeres.backends.register_backend``
    or the ``edgeres.backends`` entry-point group); the defaults suit a host CPU backend."""

    name: str = ""
    # [options] a target file may set for this backend (key -> type); None: not checked
    options: dict[str, type] | None = None
    # artifact kinds (their metadata "backend") this backend also loads, besides its own
    loads_kinds: tuple[str, ...] = ()
    # where latency is measured: "host", or "device" for backends whose artifacts are built
    # and timed on the device itself (from a device kit)
    timed_on: str = "host"
    # artifact-metadata keys that say what a device must have to run the artifact
    requirement_keys: tuple[str, ...] = ()
    # what a device needs installed (besides edgeres) to run a bundle of this backend
    python_packages: tuple[str, ...] = ("numpy", "pillow")
    # True when a host that cannot build this backend's artifacts writes a device kit instead
    builds_from_kit: bool = False

    def available(self) -> Availability:
        raise NotImplementedError

    def require(self) -> None:
        """Raise the one clear error (what is missing, what to do) when this backend cannot run here."""
        available = self.available()
        if not available.ok:
            raise EdgeresError(available.reason)

    def check_target(self, target: Target) -> None:
        """Refuse, when the target loads, option values its device cannot honour (the [options]
        types are already checked); the default accepts every value."""

    def unsupported(self, precision: str, target: Target) -> str | None:
        """Why this machine cannot build ``precision`` for ``target`` (None when it can)."""
        return None

    def int8_placement(self, target: Target) -> str | None:
        """The Q/DQ placement (``edgeres.quantize.qdq.PLACEMENTS``) of the INT8 ONNX this backend
        builds INT8 from, or None when it calibrates INT8 itself from ``BuildSpec.calibration``."""
        return "tensorrt"

    def environment(self) -> dict[str, Any]:
        """What a report should say about the machine this backend measured on (version, device)."""
        return {self.name: self.available().version}

    def kit_reason(self, target: Target) -> str | None:
        """Why this host cannot build ``target``'s artifacts, so a device kit is written
        instead; None when it builds here."""
        return None

    def loads(self, artifact: Artifact) -> bool:
        """Whether ``load`` runs this artifact (its own, or a kind it also executes)."""
        return artifact.backend in (self.name, *self.loads_kinds)

    def build(self, graph: Path, spec: BuildSpec) -> Artifact:
        raise NotImplementedError

    def load(self, artifact: Artifact, **options: Any) -> Runner:
        """A runner for ``artifact``; ``options`` (e.g. ``threads=2``) override its recorded ones."""
        raise NotImplementedError

    def load_frames(self, artifact: Artifact, spec: Any, order: str, shape: tuple[int, int, int, int],
                    threads: int | None = None) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
        """``artifact`` taking uint8 HWC frames in ``order`` (cast, colour order, mean/std of the
        ``PreprocessSpec`` and layout inside the engine): a function frames -> logits, and what
        it did. Backends that add the frame input at load time override this."""
        raise EdgeresError(f"frame input for {self.name} is built into the engine from edgeres's frame ONNX "
                           "(see the device kit's README), not added when an artifact is loaded")
