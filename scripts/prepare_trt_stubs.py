#!/usr/bin/env python3
"""Make the installed ``tensorrt-stubs`` usable by mypy; print the folder to put on MYPYPATH.

``tensorrt-stubs`` (10.13) installs ``tensorrt/__init__.pyi`` and ``tensorrt_bindings/*.pyi``
without a ``py.typed`` marker, so mypy silently ignores them (every TensorRT name is
``Any`` and a type check proves nothing), and a few generated signatures are not valid
Python (a parameter named ``in``; a parameter without default after defaulted ones). This
copies the stubs to OUT_DIR, repairs those lines, writes OUT_DIR/mypy.ini (the project's
settings, the stubs on the path, errors inside the stubs ignored) and prints OUT_DIR, so that

    mypy --config-file OUT_DIR/mypy.ini edgeres/backends/tensorrt.py

checks every TensorRT call against the stubs. Exit status 3 when tensorrt-stubs is absent.
"""

from __future__ import annotations

import ast
import importlib.metadata
import keyword
import re
import shutil
import sys
from pathlib import Path

PACKAGES = ("tensorrt", "tensorrt_bindings")
# The project's mypy settings plus the stubs on the path. Only the files named on the command line are
# reported: errors inside the generated stubs and in other edgeres modules imported along the way are silenced.
MYPY_INI = """[mypy]
python_version = 3.11
ignore_missing_imports = True
follow_imports = silent
mypy_path = {path}

[mypy-tensorrt,tensorrt.*,tensorrt_bindings,tensorrt_bindings.*]
ignore_errors = True
"""


def _valid(line: str) -> bool:
    text = line.strip()
    if not text.startswith("def "):
        return True
    try:
        ast.parse(text + " ...")
    except SyntaxError:
        return False
    return True


def repair_line(line: str) -> str:
    """Rename keyword-named parameters; give defaults to parameters that follow defaulted ones."""
    if _valid(line):
        return line
    names = "|".join(k for k in keyword.kwlist if k.islower())
    line = re.sub(rf"([(,]\s*)({names})(\s*:)", r"\1\2_\3", line)
    if _valid(line):
        return line
    head, _, rest = line.partition("(")
    params, sep, tail = rest.rpartition(")")
    parts, depth, current = [], 0, ""
    for ch in params:  # split on top-level commas only
        depth += ch in "[(" and 1 or (ch in "])" and -1 or 0)
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    seen_default = False
    for i, part in enumerate(parts):
        if "=" in part:
            seen_default = True
        elif seen_default and part.strip() and not part.strip().startswith("*"):
            parts[i] = part + " = ..."
    return f"{head}({','.join(parts)}{sep}{tail}"


def stubs_dir() -> Path | None:
    try:
        dist = importlib.metadata.distribution("tensorrt-stubs")
    except importlib.metadata.PackageNotFoundError:
        return None
    root = Path(str(dist.locate_file("")))
    return root if all((root / p / "__init__.pyi").is_file() for p in PACKAGES) else None


def prepare(out: Path) -> Path:
    src = stubs_dir()
    if src is None:
        raise FileNotFoundError("tensorrt-stubs is not installed (pip install --no-deps tensorrt-stubs)")
    if out.exists():
        shutil.rmtree(out)
    for pkg in PACKAGES:
        for pyi in sorted((src / pkg).rglob("*.pyi")):
            dst = out / pyi.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            lines = pyi.read_text(encoding="utf-8").splitlines(keepends=True)
            dst.write_text("".join(repair_line(line) for line in lines), encoding="utf-8")
        (out / pkg / "py.typed").write_text("")
    (out / "mypy.ini").write_text(MYPY_INI.format(path=out.resolve()))
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "build/trt-stubs")
    try:
        print(prepare(out))
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
