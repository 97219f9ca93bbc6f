"""The shape of every file edgeres reads, and the one check that refuses a file that is not it.

Each schema is a pydantic model of the keys edgeres uses and their types (strict: a
string is not a number, ``true`` is not 1, NaN and infinity are not measurements).
JSON documents that edgeres writes allow extra keys, so a newer edgeres can add some;
the hand-written TOML files (targets, calibration specs) refuse unknown keys, which are
typos there. ``check`` raises one ``EdgeresError`` naming the file, the key and what was
expected; what a value means (a known backend, a precision the target lists) is checked
by the code that uses it.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from edgeres.errors import EdgeresError

Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]
Bytes = Annotated[int, Field(ge=0)]


class _Written(BaseModel):
    """A document edgeres writes: typed keys, extra keys allowed."""

    model_config = ConfigDict(strict=True, extra="allow")


class _Handwritten(BaseModel):
    """A file people write by hand: an unknown key is a typo."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Preprocess(_Written):
    resize: Count | None = None
    crop: Count | None = None
    mean: list[Finite] | None = None
    std: list[Finite] | None = None
    channel_order: str | None = None
    layout: str | None = None
    interpolation: str | None = None


class ModelInfo(_Written):
    """``model.json`` beside a trained checkpoint (``model.pth``)."""

    depth: int | None = None
    num_classes: Count | None = None
    input_size: Count | None = None
    in_channels: Count | None = None
    shortcut: str | None = None
    classes: list[str] | None = None
    preprocess: Preprocess | None = None


class Sidecar(_Written):
    """An artifact's metadata file (``model.onnx.json``, ``model.xml.json``, ...)."""

    backend: str | None = None
    precision: str | None = None
    target: str | None = None
    files: list[str] = []
    sha256: str | None = None
    files_sha256: dict[str, str] = {}
    preprocess: Preprocess | None = None


class ReportRow(_Written):
    target: str | None = None
    backend: str | None = None
    precision: str | None = None
    top1: Finite | None = None
    top5: Finite | None = None
    top1_drop: Finite | None = None
    agreement: Finite | None = None
    cosine: Finite | None = None
    p50_ms: Finite | None = None
    p99_ms: Finite | None = None
    throughput: Finite | None = None
    batch: int | None = None
    size_bytes: Bytes | None = None
    build_seconds: Finite | None = None
    fidelity_only: bool = False
    notes: list[str] | str = []
    extra: dict[str, Any] = {}


class Report(_Written):
    """``report.json`` of a build or of ``edgeres report``."""

    schema_: str = Field(alias="schema")
    schema_version: int
    title: str | None = None
    model: dict[str, Any] | None = None
    environment: dict[str, Any] | None = None
    timing: dict[str, Any] | None = None
    rows: list[ReportRow] = []
    notes: list[str] = []
    merged_from: list[dict[str, Any]] = []


class KitReport(_Written):
    """``kit-report.json``, written on the device by ``edgeres kit build``."""

    target: str | None = None
    title: str | None = None
    model: dict[str, Any] | None = None
    environment: dict[str, Any] | None = None
    timing: dict[str, Any] | None = None
    rows: list[ReportRow]
    notes: list[str] = []


class FileEntry(_Written):
    sha256: str
    bytes: Bytes


class TargetRef(_Written):
    name: str
    aliases: list[str] = []


class BackendRef(_Written):
    name: str
    version: str | None = None


class BundleArtifact(_Written):
    path: str
    files: list[str] = []
    metadata: str | None = None


class BundleManifest(_Written):
    """A bundle's ``manifest.json``."""

    schema_: str = Field(alias="schema")
    schema_version: int
    target: TargetRef
    backend: BackendRef
    precision: str
    input: dict[str, Any]
    output: dict[str, Any]
    artifact: BundleArtifact
    files: dict[str, FileEntry]
    labels: list[str] | None = None
    model: dict[str, Any] | None = None
    manifest_sha256: str


class KitProfiles(_Written):
    batch: str


class KitValidation(_Written):
    n: int


class KitBuild(_Written):
    onnx: str | None = None


class KitManifest(_Written):
    """A device kit's ``kit.json``."""

    schema_: str = Field(alias="schema")
    schema_version: int
    model: dict[str, Any] = {}
    target: TargetRef
    input: dict[str, Any]
    profiles: KitProfiles
    min_tensorrt: str | None = None
    precisions: list[str]
    onnx: dict[str, str]
    builds: dict[str, dict[str, KitBuild]] = {}
    files: dict[str, str]
    validation: KitValidation


class FleetPayload(_Written):
    """``payload.json`` of the bundles a fleet run ships to a device."""

    schema_: str = Field(alias="schema")
    schema_version: int
    target: str
    bundles: dict[str, str]
    validation: dict[str, str]
    model: dict[str, Any] | None = None
    files: dict[str, str]


class TargetFile(_Handwritten):
    """A hardware target, ``targets/NAME.toml``."""

    name: str
    description: str = ""
    backend: str
    aliases: list[str] = []
    precisions: list[str]
    default_precisions: list[str] | None = None
    batch_profile: str | int | None = None
    accuracy_budget: Annotated[Finite, Field(ge=0)] | None = None
    options: dict[str, Any] = {}
    device: dict[str, Any] = {}


class CalibrationSpecFile(_Handwritten):
    """A named calibration or validation set, ``calibration/NAME.toml``."""

    source: str
    description: str = ""
    size: Count | None = None
    seed: Annotated[int, Field(ge=0)] = 0
    require_labels: bool = False
    preprocess: dict[str, Any] | None = None


_OPTION_MODELS: dict[tuple[str, str], type[BaseModel]] = {}


def options_model(backend: str, types: dict[str, Any]) -> type[BaseModel]:
    """The schema of a target's ``[options]`` table for ``backend`` (the backend's ``options``)."""
    key = (backend, repr(sorted(types.items(), key=lambda kv: kv[0])))
    if key not in _OPTION_MODELS:
        fields: dict[str, Any] = {name: (_union(kind) | None, None) for name, kind in types.items()}
        _OPTION_MODELS[key] = create_model(f"{backend}_options", __base__=_Handwritten, **fields)
    return _OPTION_MODELS[key]


def _union(kind: Any) -> Any:
    """``(int, float)`` -> ``int | float``: option types may be given as a tuple."""
    if isinstance(kind, tuple):
        result = kind[0]
        for k in kind[1:]:
            result = result | k
        return result
    return kind


def check(schema: type[BaseModel], data: Any, where: str, fix: str = "") -> Any:
    """``data`` unchanged if it has ``schema``'s shape; else an ``EdgeresError`` that names
    ``where`` (the file), the key and what was expected, with ``fix`` appended."""
    try:
        schema.model_validate(data, by_alias=True)
    except ValidationError as exc:
        raise EdgeresError(f"{where}: {_describe(exc, data, schema)}{f'; {fix}' if fix else ''}") from None
    return data


def _describe(exc: ValidationError, data: Any, schema: type[BaseModel]) -> str:
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a typo explains the rest
    first = errors[0]
    if first["type"] == "extra_forbidden":
        key = str(first["loc"][-1])
        return f"unknown key '{_dotted(first['loc'])}'{nearest(key, _keys(schema))}"
    if first["type"] == "missing":
        return f"required key '{_dotted(first['loc'])}' is missing"
    if first["type"] == "model_type" and not first["loc"]:
        return f"holds a JSON {_kind(data)}, not an object"
    path, value = _walk(data, first["loc"])
    expected = " or ".join(dict.fromkeys(_expected(e["msg"]) for e in errors if _walk(data, e["loc"])[0] == path))
    if path and isinstance(path[-1], int):  # one item of a list
        return f"key '{_dotted(path[:-1])}' must be a list of {_plural(expected)}, got {value!r} in it"
    return f"key '{_dotted(path)}' must be {expected}, got {_kind(value)} {value!r}"


def _walk(data: Any, loc: tuple[Any, ...]) -> tuple[list[Any], Any]:
    """The part of ``loc`` that exists in ``data`` (pydantic adds union member tags), and the value there."""
    path: list[Any] = []
    for part in loc:
        found = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data))
        if not found:
            break
        data = data[part]
        path.append(part)
    return path, data


def _dotted(loc: Any) -> str:
    """('rows', 0, 'p50_ms') -> 'rows[0].p50_ms'."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _expected(msg: str) -> str:
    text = msg.removeprefix("Input should be ").replace("a valid ", "a ").replace("a dictionary", "a table")
    return text.replace("a integer", "an integer")


def _plural(expected: str) -> str:
    return expected.removeprefix("an ").removeprefix("a ") + "s"


def _kind(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table",
             type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _keys(schema: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in schema.model_fields.items()]


def nearest(key: str, valid: list[str]) -> str:
    """' (did you mean 'x'?)' for a misspelt name, else the valid ones."""
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else f" (valid: {', '.join(sorted(valid))})"
