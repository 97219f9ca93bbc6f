"""``open_set``: one entry point for every kind of image source, and calibration specs.

A source is an image folder, a ``.npy``/``.npz`` file, a demo set (``demo:digits-train``,
``demo:digits-val``, ``demo:digits-c``, ``demo:photos``), or a calibration spec: a TOML file in ``calibration/``
named by NAME (``demo``) or given by PATH (``my-set.toml``). ``NAME=FOLDER`` takes a spec's
size, seed and preprocessing but reads the images from FOLDER (``imagenet=/data/val``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres import schemas
from edgeres.data import demo
from edgeres.data.arrays import ArraySet
from edgeres.data.folders import FolderSet
from edgeres.data.preprocess import PreprocessSpec
from edgeres.data.sets import ImageSet
from edgeres.errors import EdgeresError

try:  # Python 3.11+
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10 (tomli is a dependency there)
    import tomli as tomllib  # type: ignore[no-redef]

SPECS_ENV = "EDGERES_CALIBRATION_DIR"
BUILTIN_SPECS = Path(__file__).resolve().parent.parent.parent / "calibration"
DEMO_PREFIX = "demo:"
ARRAY_SUFFIXES = (".npy", ".npz")

def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise EdgeresError(f"cannot read calibration spec {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise EdgeresError(f"calibration spec {path} is not valid TOML: {exc}") from None


@dataclass(frozen=True)
class CalibrationSpec:
    """A named calibration/validation set: where the images are, how many, which, and how prepared."""

    path: Path
    source: str
    size: int | None = None
    seed: int = 0
    description: str = ""
    require_labels: bool = False
    preprocess: PreprocessSpec | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return self.path.stem

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CalibrationSpec:
        path = Path(path)
        data = schemas.check(schemas.CalibrationSpecFile, _read_toml(path), f"calibration spec {path}",
                             "'source' names the images: a folder, .npy/.npz file, demo:NAME, or ${ENV_VAR}")
        preprocess = None
        if "preprocess" in data:
            try:
                preprocess = PreprocessSpec.from_dict(data["preprocess"])
            except EdgeresError as exc:
                raise EdgeresError(f"calibration spec {path}: [{exc}]".replace(": [preprocessing: ", ": [preprocess] ")
                                   .rstrip("]")) from None
            except TypeError as exc:
                raise EdgeresError(f"calibration spec {path}: [preprocess] {exc}") from None
        return cls(path=path, source=data["source"], size=data.get("size"), seed=data.get("seed", 0),
                   description=data.get("description", ""), require_labels=data.get("require_labels", False),
                   preprocess=preprocess, raw=data)

    def resolved_source(self) -> str:
        """``source`` with ``$VARS`` and ``~`` expanded, relative paths taken from the spec's folder."""
        source = self.source
        for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", source):
            if not os.environ.get(var):
                raise EdgeresError(
                    f"calibration spec '{self.name}' ({self.path}) reads its images from ${var}, which is not set: "
                    f"export {var}=/path/to/images, or give the folder on the command line "
                    f"(--calib {self.name}=/path/to/images, or --calib /path/to/images)")
        source = os.path.expanduser(os.path.expandvars(source))
        if source.startswith(DEMO_PREFIX):
            return source
        path = Path(source)
        return str(path if path.is_absolute() else (self.path.parent / path))


def spec_dirs() -> list[Path]:
    """Where calibration specs named by NAME are looked up, first match wins."""
    dirs = [Path(p).expanduser() for p in os.environ.get(SPECS_ENV, "").split(os.pathsep) if p]
    dirs += [Path.cwd() / "calibration", BUILTIN_SPECS]
    seen, out = set(), []
    for d in dirs:
        key = d.resolve() if d.exists() else d
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def find_spec(name: str) -> Path | None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        return None
    for folder in spec_dirs():
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    return None


def list_specs() -> dict[str, Path]:
    """Every calibration spec NAME visible from here, and its file."""
    found: dict[str, Path] = {}
    for folder in spec_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


def _demo_source(source: str) -> tuple[Path, PreprocessSpec, str]:
    which = source[len(DEMO_PREFIX):]
    if which in ("digits-train", "digits-val"):
        split = which.split("-", 1)[1]
        return demo.demo_digits_dir(split), demo.DIGITS_PREPROCESS, which
    if which == "digits-c":
        from edgeres.data.corrupt import demo_digits_c_dir

        return demo_digits_c_dir(), demo.DIGITS_PREPROCESS, which
    if which == "photos":
        return demo.demo_photos_dir(), PreprocessSpec(), which
    raise EdgeresError(f"unknown demo set {source!r}: choose demo:digits-train, demo:digits-val, demo:digits-c "
                       "or demo:photos")


def open_set(source: str | os.PathLike[str], *, size: int | None = None, seed: int | None = None,
             preprocess: PreprocessSpec | None = None, require_labels: bool = False) -> ImageSet:
    """Open an image source as an ``ImageSet``.

    ``source``: an image folder (``root/<class>/<image>`` or flat), a ``.npy``/``.npz`` file,
    ``demo:digits-train`` / ``demo:digits-val`` / ``demo:photos``, a calibration spec NAME
    (``calibration/NAME.toml``), a spec PATH (``*.toml``) or ``NAME=FOLDER``.
    ``size``/``seed``/``preprocess`` given here override a spec's; a plain folder defaults to all
    images, seed 0 and the ImageNet preprocessing (256 -> 224), a demo set to its own.
    """
    text = os.fspath(source)
    if not text:
        raise EdgeresError("no image source given: pass a folder, a .npy/.npz file or a calibration spec name")
    spec: CalibrationSpec | None = None
    override: str | None = None
    path = Path(text).expanduser()
    if text.endswith(".toml"):
        if not path.is_file():
            raise EdgeresError(f"calibration spec {path} does not exist")
        spec = CalibrationSpec.load(path)
    elif not path.exists() and not text.startswith(DEMO_PREFIX):
        name, sep, folder = text.partition("=")
        spec_path = find_spec(name)
        if spec_path is not None:
            spec = CalibrationSpec.load(spec_path)
            if sep:
                if not folder:
                    raise EdgeresError(f"'{text}': give the folder after '=' (e.g. {name}=/path/to/images)")
                override = _expand(folder)  # relative to the working directory, not to the spec
        elif sep or os.sep in text or "/" in text or path.suffix.lower() in ARRAY_SUFFIXES:
            what = "calibration spec" if sep else ("array file" if path.suffix.lower() in ARRAY_SUFFIXES
                                                    else "image folder")
            target = name if sep else str(path)
            raise EdgeresError(f"{what} {target} does not exist" + (_known_specs() if sep else ""))
        else:
            raise EdgeresError(f"'{text}' is neither an existing folder or .npy/.npz file nor a calibration "
                               f"spec name{_known_specs()}")

    if spec is not None:
        text = override if override is not None else spec.resolved_source()
        size = size if size is not None else spec.size
        seed = seed if seed is not None else spec.seed
        preprocess = preprocess or spec.preprocess
        require_labels = require_labels or spec.require_labels
        if text.startswith(DEMO_PREFIX):
            inner = open_set(text, size=size, seed=seed, preprocess=preprocess, require_labels=require_labels)
        else:
            if not Path(text).exists():
                raise EdgeresError(f"calibration spec '{spec.name}' ({spec.path}): {text} does not exist")
            inner = _open_path(Path(text), size=size, seed=seed, preprocess=preprocess,
                               require_labels=require_labels, source=os.fspath(source))
        inner.source = os.fspath(source)
        inner.spec_path = spec.path
        inner.name = f"{spec.name}: {inner.name}"
        return inner

    seed = 0 if seed is None else seed
    if text.startswith(DEMO_PREFIX):
        root, default_spec, label = _demo_source(text)
        selected = FolderSet(root, size=size, seed=seed, preprocess=preprocess or default_spec,
                             require_labels=require_labels, name="", source=text)
        selected.name = f"{label} ({len(selected)} images)"
        return selected
    return _open_path(path, size=size, seed=seed, preprocess=preprocess, require_labels=require_labels, source=text)


def _expand(text: str) -> str:
    return os.path.expanduser(os.path.expandvars(text))


def _open_path(path: Path, *, size: int | None, seed: int, preprocess: PreprocessSpec | None,
               require_labels: bool, source: str) -> ImageSet:
    if path.suffix.lower() in ARRAY_SUFFIXES and not path.is_dir():
        return ArraySet(path, size=size, seed=seed, preprocess=preprocess, require_labels=require_labels,
                        source=source)
    if path.is_file():
        raise EdgeresError(f"{path} is a file, not an image set: give a folder of images, a .npy/.npz file "
                           "or a calibration spec (.toml)")
    return FolderSet(path, size=size, seed=seed, preprocess=preprocess, require_labels=require_labels, source=source)


def _known_specs() -> str:
    names = sorted(list_specs())
    return f" (calibration specs here: {', '.join(names)})" if names else ""
