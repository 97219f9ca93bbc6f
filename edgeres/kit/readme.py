"""The README written into every device kit: what to run on the device, what was checked on the
host, each recipe's trtexec lines, camera-frame engines and C++, and the files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgeres.artifact import BatchProfile
from edgeres.backends.tensorrt_plan import MIN_TENSORRT, parse_version, version_text
from edgeres.backends.tensorrt_recipes import THROUGHPUT_STREAMS, span_of
from edgeres.kit.layout import REPORT_JSON

UINT8_INPUT_FROM = (8, 5)   # onnx-tensorrt 8.5: "Added support for importing ONNX networks with UINT8 I/O types"


def model_name(model: Mapping[str, Any]) -> str:
    """'ResNet-50' from a kit's model metadata (its name where one was given)."""
    if model.get("name"):
        return str(model["name"])
    return f"ResNet-{model['depth']}" if model.get("depth") else "model"


def _proof_lines(proof: Mapping[str, Any]) -> list[str]:
    lines = ["## Checked on the host before this kit was written", "",
             "Every ONNX ran under ONNX Runtime on the validation slice against the FP32 reference:", "",
             "| file | n | agreement | cosine | max abs diff | tolerance (agreement / cosine) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for rel, c in proof.get("onnx", {}).items():
        tol = c["tolerance"]
        lines.append(f"| `{rel}` | {c['n']} | {100 * c['agreement']:.2f}% | {c['cosine']:.5f} | "
                     f"{c['max_abs_diff']:.4g} | {100 * tol['min_agreement']:.0f}% / {tol['min_cosine']} |")
    for rel, entry in proof.get("lint", {}).items():
        lines += ["", (f"`{rel}` passes the TensorRT explicit-quantization lint (symmetric INT8, per-channel weight "
                      f"axes, no Q/DQ on the output, residual Adds fusable, opset and operators) for "
                      f"{', '.join(entry['recipes'])}.")]
    return lines


def readme_lines(recipes: Sequence[Mapping[str, Any]], proof: Mapping[str, Any]) -> list[str]:
    """The kit README's sections: what was checked on the host, and each recipe's trtexec lines."""
    lines = _proof_lines(proof)
    lines += ["", "## Equivalent trtexec command lines", "",
              ("Run from this directory; use the section for the TensorRT on the device (`dpkg -l | grep nvinfer`, "
              "or `python3 -c 'import tensorrt; print(tensorrt.__version__)'`). Per engine: the build line; "
              f"a latency line at batch 1 that prints the per-layer profile; a throughput line at the profile's "
              f"largest batch with {THROUGHPUT_STREAMS} execution contexts running at once.")]
    for r in recipes:
        lines += ["", f"### {r['label']}: {r['typed_mode']}ly typed", ""]
        if r.get("dla"):
            lines += [f"{r['dla']}.", ""]
        lines += [f"Note: {note}." for note in r.get("notes", [])]
        if r.get("notes"):
            lines.append("")
        for e in r["engines"]:
            lines += [f"{e['variant']} (runs {e['execution_precision']}, from `{e['onnx']}`):", "",
                      f"    {e['build']}", f"    {e['bench']}", f"    {e['throughput']}", ""]
    return lines


def _how_to_build(manifest: Mapping[str, Any], name: str) -> list[str]:
    """The opening: ``edgeres kit build`` where the device's TensorRT runs edgeres, else trtexec alone."""
    newest = manifest["target"].get("device", {}).get("tensorrt_max")
    if newest is not None and parse_version(str(newest)) < MIN_TENSORRT:
        return [(f"This device's TensorRT ({newest}) is older than the {version_text(MIN_TENSORRT)} "
                 "`edgeres kit build` needs, so build, time and profile its engines with the trtexec lines below "
                 "(on the device, from this folder)."), ""]
    return ["TensorRT engines only run on the GPU and TensorRT version that built them, so build them on the device:",
            "",
            "    pip install edgeres            # on the device; needs tensorrt (JetPack), numpy and cuda-python",
            f"    edgeres kit build {name}      # or {name}.tar.gz: builds, validates, benchmarks",
            "",
            (f"It picks the recipe for the TensorRT it finds, builds every engine below (GPU, and DLA rows where the "
             f"device has DLA cores), writes them and `{REPORT_JSON}` (accuracy vs labels and vs the FP32 reference "
             f"on the {manifest['validation']['n']}-input validation slice, latency, power mode and clock state) into "
             f"`{name}/engines/`, and recommends the fastest engine within the accuracy budget."), ""]


def kit_readme(manifest: Mapping[str, Any], name: str) -> str:
    """The whole README of a kit folder called ``name``."""
    target = manifest["target"]
    lines = [
        f"# edgeres device kit: {model_name(manifest['model'])} for {target['name']}", "",
        (f"Target: {target['name']} ({target.get('description', '')}). "
         f"Precisions: {', '.join(manifest['precisions'])}. Batch profile (min:opt:max): "
         f"{manifest['profiles']['batch']}. Needs TensorRT >= {manifest['min_tensorrt']}."), "",
        *_how_to_build(manifest, name),
        *readme_lines(manifest["recipes"], manifest["proof"]),
        *_frames_and_cpp_lines(manifest),
        "## Files", "", "| file | sha256 |", "| --- | --- |",
        *(f"| `{f}` | `{h[:16]}...` |" for f, h in manifest["files"].items()),
    ]
    return "\n".join(lines) + "\n"


def _frame_sources(recipes: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """For each ONNX a camera-frame engine would start from, the recipes that build from it: per recipe,
    its INT8 GPU engine's ONNX where it has one, else FP16's, else FP32's."""
    sources: dict[str, list[str]] = {}
    for r in recipes:
        if parse_version(r["first"]) < UINT8_INPUT_FROM:
            continue
        by_variant = {e["variant"]: e["onnx"] for e in r["engines"]}
        precision = next((p for p in ("int8", "fp16", "fp32") if p in by_variant), None)
        if precision:
            sources.setdefault(by_variant[precision], []).append(f"{span_of(r['label'])} ({precision})")
    return sources


def _frames_and_cpp_lines(manifest: Mapping[str, Any]) -> list[str]:
    """README: engines that take camera frames (per recipe, from the ONNX it builds from), and running
    the engines from C++ (examples/cpp)."""
    h, w = (int(d) for d in manifest["input"]["shape"][2:])
    batch = BatchProfile.parse(manifest["profiles"]["batch"])
    shapes = " ".join(f"--{k}Shapes=frame:{n}x{h}x{w}x3" for k, n in (("min", batch.min), ("opt", batch.opt),
                                                                      ("max", batch.max)))
    sources = _frame_sources(manifest["recipes"])
    lines = ["## Camera frames and C++", ""]
    if sources:
        lines += [("For an engine that takes uint8 HWC frames (cast, colour order, mean/std and layout inside it), "
                   "write the frame-input ONNX (input `frame`) from the ONNX your TensorRT's recipe builds from, then "
                   f"build it with that recipe's build line, `--onnx=` the frame ONNX and `{shapes}` in place of the "
                   f"`{manifest['input']['name']}` shapes:"), ""]
    for onnx, recipes in sources.items():
        command = (f"    python -m edgeres.export.frame_input {onnx} {onnx.replace('.onnx', '.frame.onnx')} "
                   "--preprocess preprocess.json --order BGR")
        lines += [f"{', '.join(recipes)}:", "", command, ""]
    old = [span_of(r["label"]) for r in manifest["recipes"] if parse_version(r["first"]) < UINT8_INPUT_FROM]
    if old:
        lines += [(f"{', '.join(old)}: no frame-input engine: TensorRT's ONNX parser takes uint8 inputs from 8.5 "
                   "(onnx-tensorrt changelog); cast and normalise the frames in the application there."), ""]
    return lines + [
        ("edgeres's `examples/cpp` runs an engine of a bundle (`edgeres package engines/model_<p>.engine "
         f"--target {manifest['target']['name']} --out bundle`) with TensorRT's C++ runtime (enqueueV3 on a "
         "CUDA stream):"), "",
        "    cmake -S examples/cpp -B build/cpp -DEDGERES_WITH_TENSORRT=ON -DEDGERES_WITH_OPENVINO=OFF",
        "    cmake --build build/cpp -j && build/cpp/edgeres_run bundle image.jpg --bench 200", ""]


__all__ = ["kit_readme", "model_name", "readme_lines"]
