"""Clean-up of a freshly exported ONNX graph (torch-free): Identity removal, initializer de-duplication."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


# --- clean-up -----------------------------------------------------------------------------------

def _rename_uses(model: onnx.ModelProto, mapping: dict[str, str]) -> None:
    if not mapping:
        return
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]


def remove_identities(model: onnx.ModelProto) -> int:
    """Drop Identity nodes (the TorchScript exporter emits them when it deduplicates equal
    initializers, e.g. the zero biases of freshly folded convolutions): their consumers read the
    Identity's input directly. An Identity that feeds a graph output stays. Returns the count."""
    outputs = {o.name for o in model.graph.output}
    mapping: dict[str, str] = {}
    keep = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.output[0] not in outputs and len(node.input) == 1:
            mapping[node.output[0]] = node.input[0]
        else:
            keep.append(node)
    # chains of identities resolve to their root
    for key in list(mapping):
        root = mapping[key]
        while root in mapping:
            root = mapping[root]
        mapping[key] = root
    removed = len(model.graph.node) - len(keep)
    if removed:
        del model.graph.node[:]
        model.graph.node.extend(keep)
        _rename_uses(model, mapping)
    return removed


def deduplicate_initializers(model: onnx.ModelProto) -> int:
    """Keep one copy of byte-identical initializers (same type, shape and data); drop unused ones.
    Returns how many initializers were removed."""
    from onnx import numpy_helper

    inputs = {i.name for i in model.graph.input}
    seen: dict[tuple[int, tuple[int, ...], str], str] = {}
    mapping: dict[str, str] = {}
    for init in model.graph.initializer:
        if init.name in inputs:
            continue
        data = numpy_helper.to_array(init).tobytes()
        key = (init.data_type, tuple(init.dims), hashlib.sha256(data).hexdigest())
        if key in seen:
            mapping[init.name] = seen[key]
        else:
            seen[key] = init.name
    _rename_uses(model, mapping)
    used = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    keep = [i for i in model.graph.initializer if i.name in used or i.name in inputs]
    removed = len(model.graph.initializer) - len(keep)
    if removed:
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep)
    return removed


def clean_graph(model: onnx.ModelProto) -> dict[str, int]:
    """Identity removal, then initializer de-duplication; what was removed."""
    identities = remove_identities(model)
    duplicates = deduplicate_initializers(model)
    return {"identity_nodes_removed": identities, "initializers_removed": duplicates}
