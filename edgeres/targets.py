"""Hardware targets: one TOML file each in ``targets/``, validated on load.

A target names its backend, the precisions the device supports, the ones built by
default, a batch profile, an accuracy budget and backend options. Users add their
own by dropping a TOML file in a folder given by ``--targets-dir`` or
``$EDGERES_TARGETS_DIR``; a user's file overrides a built-in target of the same name.

Every mistake in a file is an ``EdgeresError`` that names the file, the key and,
for a misspelt key, the nearest valid one.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres import schemas
from edgeres.artifact import BatchProfile
from edgeres.backends import backend_names, get_backend
from edgeres.backends.base import PRECISIONS, Availability
from edgeres.errors import EdgeresError, UsageError

try:  # Python 3.11+
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

# the repository's targets/ (a checkout or editable install), else where a wheel installs them (data-files)
BUILTIN_DIR = next((d for d in (Path(__file__).resolve().parent.parent / "targets",
                                Path(sys.prefix) / "share" / "edgeres" / "targets") if d.is_dir()),
                   Path(__file__).resolve().parent.parent / "targets")
ENV_DIR = "EDGERES_TARGETS_DIR"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

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

    @property
    def builtin(self) -> bool:
        return self.source is not None and self.source.parent.resolve() == BUILTIN_DIR

    def matches(self, name: str) -> bool:
        """True when ``name`` is this target's name or one of its aliases."""
        return name == self.name or name in self.aliases

    def availability(self) -> Availability:
        """Whether this target's backend is usable on this machine, and why not."""
        return get_backend(self.backend).available()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "backend": self.backend,
            "aliases": list(self.aliases), "precisions": list(self.precisions),
            "default_precisions": list(self.default_precisions), "batch_profile": str(self.batch_profile),
            "accuracy_budget": self.accuracy_budget, "options": dict(self.options), "device": dict(self.device),
            "source": str(self.source) if self.source else None,
        }


def backend_option_types(backend: str) -> dict[str, Any] | None:
    """The option keys a backend accepts (its ``options``), or None if it declares none."""
    return get_backend(backend).options


def _string_list(value: list[str], key: str, where: str) -> tuple[str, ...]:
    if len(set(value)) != len(value):
        raise EdgeresError(f"{where}: key '{key}' lists the same value twice: {value}")
    return tuple(value)


def parse_target(data: dict[str, Any], source: Path) -> Target:
    """Validate one target's TOML table; ``source`` is only used in messages."""
    where = f"target file {source}"
    schemas.check(schemas.TargetFile, data, where)
    name = data["name"]
    if not NAME_RE.match(name):
        raise EdgeresError(f"{where}: name {name!r} must be lower-case letters, digits, '-', '_' or '.'")
    aliases = _string_list(data.get("aliases", []), "aliases", where)
    for alias in aliases:
        if not NAME_RE.match(alias) or alias == name:
            raise EdgeresError(f"{where}: alias {alias!r} must differ from the name and be lower-case letters, "
                               "digits, '-', '_' or '.'")
    backend = data["backend"]
    known = backend_names()
    if backend not in known:
        raise EdgeresError(f"{where}: key 'backend': unknown backend '{backend}'{schemas.nearest(backend, known)}")
    precisions = _string_list(data["precisions"], "precisions", where)
    if not precisions:
        raise EdgeresError(f"{where}: key 'precisions' is empty; list at least one of {', '.join(PRECISIONS)}")
    for p in precisions:
        if p not in PRECISIONS:
            raise EdgeresError(f"{where}: key 'precisions': unknown precision '{p}'"
                               f"{schemas.nearest(p, list(PRECISIONS))}")
    defaults = _string_list(data.get("default_precisions", list(precisions)), "default_precisions", where)
    for p in defaults:
        if p not in precisions:
            raise EdgeresError(f"{where}: key 'default_precisions': '{p}' is not in precisions {list(precisions)}")
    options = data.get("options", {})
    allowed = backend_option_types(backend)
    if allowed is not None:
        schemas.check(schemas.options_model(backend, allowed), options, f"{where}: [options] of backend {backend}")
    budget = float(data.get("accuracy_budget", 1.0))
    try:
        profile = BatchProfile.parse(str(data.get("batch_profile", "1:1:8")))
    except EdgeresError as exc:
        raise EdgeresError(f"{where}: key 'batch_profile': {exc}") from None
    target = Target(
        name=name, backend=backend, precisions=precisions, default_precisions=defaults,
        description=data.get("description", ""), aliases=aliases, batch_profile=profile,
        accuracy_budget=budget, options=dict(options), device=dict(data.get("device", {})), source=source,
    )
    get_backend(backend).check_target(target)
    return target


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
    dirs = []
    for d, origin in ((extra, "--targets-dir"), (os.environ.get(ENV_DIR), f"${ENV_DIR}")):
        if not d:
            continue
        if not Path(d).is_dir():
            raise EdgeresError(f"targets folder {d} (from {origin}) does not exist")
        dirs.append(Path(d))
    return [*dirs, BUILTIN_DIR]


def all_targets(extra_dir: str | os.PathLike[str] | None = None) -> dict[str, Target]:
    """Every target by name, in name order.

    A target in an earlier folder (``--targets-dir``, then ``$EDGERES_TARGETS_DIR``, then
    the built-ins) overrides one of the same name in a later folder. Two files with the
    same name in one folder, or an alias used by two targets, are errors.
    """
    found: dict[str, Target] = {}
    seen_dirs: set[Path] = set()
    for d in target_dirs(extra_dir):
        if not d.is_dir() or d.resolve() in seen_dirs:
            continue
        seen_dirs.add(d.resolve())
        here: dict[str, Target] = {}
        for path in sorted(d.glob("*.toml")):
            target = load_target_file(path)
            if target.name in here:
                raise EdgeresError(f"target '{target.name}' is defined twice in {d}: "
                                   f"{here[target.name].source} and {path}")
            here[target.name] = target
        for name, target in here.items():
            found.setdefault(name, target)  # earlier folders win
    _check_aliases(found)
    return dict(sorted(found.items()))


def _check_aliases(targets: dict[str, Target]) -> None:
    owner: dict[str, Target] = {t.name: t for t in targets.values()}
    for target in targets.values():
        for alias in target.aliases:
            other = owner.get(alias)
            if other is not None and other is not target:
                kind = "name" if other.name == alias else "alias"
                raise EdgeresError(
                    f"alias '{alias}' of target '{target.name}' ({target.source}) clashes with the {kind} of "
                    f"target '{other.name}' ({other.source}); rename one of them, or give your file the "
                    f"name '{other.name}' to override that target")
            owner[alias] = target


def get_target(name_or_path: str | os.PathLike[str] | Target,
               extra_dir: str | os.PathLike[str] | None = None) -> Target:
    """A target by name, alias, or path to a TOML file; a misspelt name suggests the nearest."""
    if isinstance(name_or_path, Target):
        return name_or_path
    text = os.fspath(name_or_path)
    if text.endswith(".toml") or "/" in text or os.sep in text:
        return load_target_file(text)
    targets = all_targets(extra_dir)
    for target in targets.values():
        if target.matches(text):
            return target
    names = sorted(set(targets) | {a for t in targets.values() for a in t.aliases})
    match = difflib.get_close_matches(text, names, n=1, cutoff=0.5)
    hint = f" Did you mean '{match[0]}'?" if match else ""
    known = ", ".join(sorted(targets)) or "none (no target files found)"
    raise UsageError(f"unknown target '{text}'.{hint} Known targets: {known} (see 'edgeres targets')")


def describe(target: Target, availability: Availability | None = None) -> dict[str, Any]:
    """One target for ``edgeres targets``: its definition plus whether it is usable here and why not."""
    a = availability if availability is not None else target.availability()
    d = target.to_dict()
    d["builtin"] = target.builtin
    d["usable"] = {"ok": a.ok, "reason": a.reason, "backend_version": a.version, "details": dict(a.details),
                   "device_kit": not a.ok and get_backend(target.backend).builds_from_kit}
    return d


def format_precisions(target: Target) -> str:
    """'int8*, fp16*, fp32': the starred ones are built by default."""
    return ", ".join(p + ("*" if p in target.default_precisions else "") for p in target.precisions)


def targets_table(targets: list[Target], availability: dict[str, Availability]) -> str:
    from edgeres.table import format_table

    rows = []
    for t in targets:
        a = availability[t.backend]
        usable = f"yes ({t.backend} {(a.version or '').split('-')[0]})" if a.ok else f"no: {a.reason}"
        if not a.ok and get_backend(t.backend).builds_from_kit:
            usable += "; 'edgeres build' writes a device kit instead"
        rows.append((t.name, ", ".join(t.aliases) or "-", t.backend, format_precisions(t), usable))
    table = format_table(["target", "aliases", "backend", "precisions (* = default)", "usable here"], rows)
    return table


def to_toml(target: Target) -> str:
    """The target as a TOML file ``--targets-dir`` loads back (tomli_w writes it: true, not True)."""
    import tomli_w

    d = {k: v for k, v in target.to_dict().items() if k != "source" and v not in (None, {}, "")}
    return tomli_w.dumps(d)


def show_text(target: Target, availability: Availability) -> str:
    """``edgeres targets show NAME``: the target as TOML a user can paste into their own file, with
    where it came from and whether it is usable here as comments."""
    lines = [f"# {target.name}: {target.source}{' (built-in)' if target.builtin else ''}",
             "# precisions marked default are built when --precision is not given"]
    if availability.ok:
        lines.append(f"# usable here: yes ({target.backend} {availability.version})")
    else:
        lines.append(f"# usable here: no: {availability.reason}")
        if get_backend(target.backend).builds_from_kit:
            lines.append(f"#   'edgeres build --target {target.name}' writes a device kit; "
                         "'edgeres kit build' on the device builds the engines")
    lines.append("# copy to your own folder (--targets-dir or $EDGERES_TARGETS_DIR), rename and edit")
    return "\n".join(lines) + "\n" + to_toml(target).rstrip("\n")
