"""Class names: where a build finds them, so that they travel with the model.

In this order: ``--labels FILE`` (one name per line), the checkpoint folder's ``model.json``,
the class folders of the labeled validation set. The names go into the ONNX metadata, the
report, the device kit and the bundle's ``labels.txt``; ``python -m edgeres.run`` prints them.
A list whose length is not the model's class count is refused: every later step indexes it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeres.errors import EdgeresError


@dataclass(frozen=True)
class ClassNames:
    """The names by class index, and where they came from (None: no names anywhere)."""

    names: list[str] | None
    origin: str | None


def read_labels_file(path: str | os.PathLike[str]) -> list[str]:
    """One class name per line; blank lines are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a BOM (Windows Notepad) is not part of the first name
    except OSError as exc:
        raise EdgeresError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise EdgeresError(f"labels file {path} is not UTF-8 text (one class name per line)") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise EdgeresError(f"labels file {path} names no classes (one class name per line)")
    return names


def resolve_class_names(num_classes: int, *, labels_file: str | os.PathLike[str] | None = None,
                        model_json: Sequence[str] | None = None, model_json_where: str = "model.json",
                        val_classes: Sequence[str] | None = None) -> ClassNames:
    """The first source that names the classes: --labels, the checkpoint's model.json, the
    validation set's class folders. A labels file or model.json whose length differs from
    ``num_classes`` is an error; class folders that do not cover every class are not names."""
    if labels_file is not None:
        names = read_labels_file(labels_file)
        _check_count(names, num_classes, f"--labels {labels_file}")
        return ClassNames(names, f"--labels {labels_file}")
    if model_json:
        names = [str(c) for c in model_json]
        _check_count(names, num_classes, model_json_where)
        return ClassNames(names, model_json_where)
    if val_classes and len(val_classes) == num_classes:
        return ClassNames([str(c) for c in val_classes], "the validation set's class folders")
    return ClassNames(None, None)


def _check_count(names: list[str], num_classes: int, where: str) -> None:
    if len(names) != num_classes:
        raise EdgeresError(f"{where} names {len(names)} classes but the model has {num_classes}: give a labels file "
                           f"with one line per class of the checkpoint (or --num-classes {len(names)} with a "
                           "checkpoint of that many)")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise EdgeresError(f"{where} names some classes twice: {duplicates[:5]}")
