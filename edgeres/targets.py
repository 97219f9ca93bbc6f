"""Hardware targets: one TOML file each in ``targets/``, validated on load.

A target names its backend, the precisions the device supports, the ones built by
default, a batch profile, an accuracy budget and backend options. Users add their
own by dropping a TOML file in a folder given by ``--targets-dir`` or
``$EDGERES_TARGETS_DIR``.
"""

from __future__ import annotations

import difflib
import importlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres.backends import BACKEND_MODULES
from edgeres.backends.base import PRECISIONS, BatchProfile
from edgeres.errors import EdgeresError

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "targets"
ENV_DIR = "EDGERES_TARGETS_DIR"

# key -> (type(s), required)
TOP_LEVEL: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "name": (str, True),
    "description": (str, False),
    "backend": (str, True),
    "aliases": (list, False),
    "precisions": (list, True),
    "default_precisions": (list, False),
    "batch_profile": (str, False),
    "accuracy_budget": ((int, float), False),
    "options": (dict, False),
    "device": (dict, False),
}


@dataclass(frozen=True)
class Target:
    name: str
    backend: str
    precisions: tuple[str, ...]
    default_precisions: tuple[str, ...]
    description: str = ""
    aliases: tuple[str, ...] = ()
    batch_profile: BatchProfile = field(default_factory=BatchProfile)
    accuracy_budget: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "backend": self.backend,
            "aliases": list(self.aliases), "precisions": list(self.precisions),
            "default_precisions": list(self.default_precisions), "batch_profile": str(self.batch_profile),
            "accuracy_budget": self.accuracy_budget, "options": dict(self.options), "device": dict(self.device),
            "source": str(self.source) if self.source else None,
        }


def _nearest(key: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else f" (valid keys: {', '.join(sorted(valid))})"


def backend_option_types(backend: str) -> dict[str, Any] | None:
    """The option keys a backend accepts (its module's ``OPTIONS``), or None if it declares none."""
    module = importlib.import_module(BACKEND_MODULES[backend])
    return getattr(module, "OPTIONS", None)


def parse_target(data: dict[str, Any], source: Path) -> Target:
    where = f"target file {source}"
    for key, value in data.items():
        if key not in TOP_LEVEL:
            raise EdgeresError(f"{where}: unknown key '{key}'{_nearest(key, list(TOP_LEVEL))}")
        types, _ = TOP_LEVEL[key]
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
            raise EdgeresError(f"{where}: key '{key}' must be a {wanted}, got {type(value).__name__} {value!r}")
    for key, (_, required) in TOP_LEVEL.items():
        if required and key not in data:
            raise EdgeresError(f"{where}: required key '{key}' is missing")
    backend = data["backend"]
    if backend not in BACKEND_MODULES:
        raise EdgeresError(f"{where}: unknown backend '{backend}'{_nearest(backend, list(BACKEND_MODULES))}")
    precisions = tuple(data["precisions"])
    for p in precisions:
        if p not in PRECISIONS:
            raise EdgeresError(f"{where}: unknown precision '{p}'{_nearest(str(p), list(PRECISIONS))}")
    defaults = tuple(data.get("default_precisions", precisions))
    for p in defaults:
        if p not in precisions:
            raise EdgeresError(f"{where}: default precision '{p}' is not in precisions {list(precisions)}")
    options = data.get("options", {})
    allowed = backend_option_types(backend)
    if allowed is not None:
        for key, value in options.items():
            if key not in allowed:
                raise EdgeresError(f"{where}: unknown option '{key}' for backend {backend}{_nearest(key, list(allowed))}")
            if isinstance(value, bool) != (allowed[key] is bool) or not isinstance(value, allowed[key]):
                raise EdgeresError(f"{where}: option '{key}' must be a {allowed[key].__name__}, got {value!r}")
    try:
        profile = BatchProfile.parse(data.get("batch_profile", "1:1:8"))
    except EdgeresError as exc:
        raise EdgeresError(f"{where}: {exc}") from None
    return Target(
        name=data["name"], backend=backend, precisions=precisions, default_precisions=defaults,
        description=data.get("description", ""), aliases=tuple(data.get("aliases", ())), batch_profile=profile,
        accuracy_budget=float(data.get("accuracy_budget", 1.0)), options=dict(options),
        device=dict(data.get("device", {})), source=source,
    )


def load_target_file(path: str | os.PathLike[str]) -> Target:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise EdgeresError(f"cannot read target file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise EdgeresError(f"target file {path} is not valid TOML: {exc}") from None
    return parse_target(data, path)


def target_dirs(extra: str | os.PathLike[str] | None = None) -> list[Path]:
    """User folders first (``--targets-dir``, then ``$EDGERES_TARGETS_DIR``), built-ins last."""
    dirs = [Path(d) for d in (extra, os.environ.get(ENV_DIR)) if d]
    for d in dirs:
        if not d.is_dir():
            raise EdgeresError(f"targets folder {d} does not exist")
    return [*dirs, BUILTIN_DIR]


def all_targets(extra_dir: str | os.PathLike[str] | None = None) -> dict[str, Target]:
    """Every target by name; a user's file overrides a built-in of the same name."""
    found: dict[str, Target] = {}
    for d in reversed(target_dirs(extra_dir)):
        for path in sorted(d.glob("*.toml")):
            target = load_target_file(path)
            found[target.name] = target
    return found


def get_target(name_or_path: str, extra_dir: str | os.PathLike[str] | None = None) -> Target:
    """A target by name, alias, or path to a TOML file."""
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        return load_target_file(name_or_path)
    targets = all_targets(extra_dir)
    for target in targets.values():
        if name_or_path == target.name or name_or_path in target.aliases:
            return target
    names = sorted(set(targets) | {a for t in targets.values() for a in t.aliases})
    match = difflib.get_close_matches(name_or_path, names, n=1)
    hint = f" Did you mean '{match[0]}'?" if match else ""
    raise EdgeresError(f"unknown target '{name_or_path}'.{hint} Known targets: {', '.join(sorted(targets))}")
