"""What a device kit prints for each TensorRT recipe: its engines, their trtexec lines, its notes.

Only the recipes for the TensorRT versions the target's device can have are rendered (the
target's ``min_tensorrt`` option up to its ``[device] tensorrt_max``: Jetson Nano stops at
8.2, Xavier at 8.5), and each is rendered the way the device's planner
(``tensorrt_plan.choose_typed_mode``) would build with the target's ``typed_mode``: ``strong``
narrows the 8.5 - 10.11 recipe to 9.1 - 10.11 (8.5 and 8.6 have no strongly typed networks and
``edgeres kit build`` refuses there), ``weak`` makes the 10.12 - 10.x lines weakly typed, and
a request no version of a recipe can honour (``weak`` on 11.x) leaves that recipe with a note
and no lines. DLA rows appear only where the device has DLA cores and the recipe's TensorRT
drives them; what was left out is said in the recipe's ``notes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from edgeres.artifact import BatchProfile
from edgeres.backends.tensorrt_plan import (
    PRECISION_FLAGS_REMOVED_IN,
    STRONGLY_TYPED_FLAG_FROM,
    parse_version,
    profile_shapes,
    resolve_options,
    shape_str,
    trtexec_command,
    version_text,
)
from edgeres.backends.tensorrt_recipes import (
    ONNX_FILES,
    RECIPES,
    THROUGHPUT_STREAMS,
    EngineVariant,
    Recipe,
    engine_variants,
    execution_precision,
    onnx_key,
    plan_variant,
    span_of,
    unknown_flags,
)
from edgeres.errors import EdgeresError


def edge_versions(recipe: Recipe) -> list[tuple[int, ...]]:
    """The oldest and the newest version a recipe covers (its lines must be valid for both)."""
    if recipe.below is None:
        last: tuple[int, ...] = (recipe.first[0], 99)
    elif recipe.below[1] > 0:
        last = (recipe.below[0], recipe.below[1] - 1)
    else:
        last = (recipe.below[0] - 1, 99)
    return [recipe.first, last]


def target_recipes(oldest: str | Sequence[int], newest: str | Sequence[int] | None) -> list[Recipe]:
    """The recipes for a device whose TensorRT is between ``oldest`` and ``newest`` (None: no limit)."""
    lo = parse_version(oldest if isinstance(oldest, str) else tuple(oldest))
    hi = None if newest is None else parse_version(newest if isinstance(newest, str) else tuple(newest))
    return [r for r in RECIPES if r.overlaps(lo, hi)]


def typed_recipe(recipe: Recipe, requested: str) -> tuple[Recipe | None, str]:
    """``recipe`` as the device's planner builds with ``typed_mode = requested``, and a note on what
    changed; None where every version the recipe covers refuses the request."""
    span = recipe.span
    if requested == "auto" or requested == recipe.typed_mode:
        return recipe, ""
    if requested == "weak":
        if recipe.first >= PRECISION_FLAGS_REMOVED_IN:
            return None, (f"typed_mode = weak: {span} has only strongly typed networks (weak typing was removed in "
                          "11), so edgeres kit build refuses this target there; set typed_mode = \"auto\" or "
                          "\"strong\" to build on it")
        return replace(recipe, typed_mode="weak"), ("typed_mode = weak: weakly typed with precision flags (deprecated "
                                                    "from TensorRT 10.12) instead of strongly typed")
    if recipe.below is not None and recipe.below <= STRONGLY_TYPED_FLAG_FROM:
        return None, (f"typed_mode = strong: {span} has no strongly typed networks (TensorRT 9.1+), so edgeres kit "
                      "build refuses this target there")
    if recipe.first < STRONGLY_TYPED_FLAG_FROM:
        last = edge_versions(recipe)[1]
        narrowed = replace(recipe, typed_mode="strong", first=STRONGLY_TYPED_FLAG_FROM,
                           plan_version=STRONGLY_TYPED_FLAG_FROM,
                           label=f"TensorRT {version_text(STRONGLY_TYPED_FLAG_FROM)} - {version_text(last)}")
        return narrowed, (f"typed_mode = strong: TensorRT {version_text(recipe.first)} - 9.0 (JetPack 5's 8.5, JetPack "
                          "6.0's 8.6) has no strongly typed networks, so edgeres kit build refuses this target there; "
                          "these lines are for 9.1 and newer")
    return replace(recipe, typed_mode="strong"), ""


def recipe_variants(recipe: Recipe, precisions: Sequence[str], options: Mapping[str, Any],
                    num_dla_cores: int | None) -> tuple[list[EngineVariant], list[str]]:
    """The engines a recipe's lines build, and notes on what was left out (precisions it has no
    lines for, DLA rows it cannot have, a DLA core the host cannot check)."""
    opts = resolve_options(options)
    wanted = [p for p in precisions if p in recipe.precisions]
    notes = [f"{p}: no lines in this recipe (it builds {', '.join(recipe.precisions)})"
             for p in precisions if p not in recipe.precisions]
    core = int(opts["dla_core"])
    asks_dla = core >= 0 or bool(opts["dla_variants"])
    if not recipe.dla:
        variants, _ = engine_variants(wanted, {**opts, "dla_core": -1, "dla_variants": False}, 0)
        if asks_dla and num_dla_cores != 0:
            notes.append(f"no DLA engines with {recipe.span}: GPU rows only")
        return variants, notes
    if num_dla_cores is None and core >= 0:
        variants, _ = engine_variants(wanted, opts, core + 1)
        notes.append(f"dla_core = {core}: the target does not declare how many DLA cores its device has; where the "
                     f"device has no DLA core {core}, edgeres kit build builds FP16/INT8 on the GPU instead and says so")
        return variants, notes
    variants, more = engine_variants(wanted, opts, num_dla_cores)
    return variants, notes + more


def bench_command(variant: EngineVariant, engine: str, input_name: str, shape: Sequence[int]) -> str:
    """trtexec line that times an engine and prints its per-layer profile."""
    args = ["trtexec", f"--loadEngine={engine}", f"--shapes={input_name}:{shape_str(shape)}"]
    if variant.dla_core is not None:
        args.append(f"--useDLACore={variant.dla_core}")
    args += ["--useSpinWait", "--dumpProfile", "--separateProfileRun"]
    return " ".join(args)


def throughput_command(variant: EngineVariant, engine: str, input_name: str, shape: Sequence[int],
                       streams_flag: str) -> str:
    """trtexec line for throughput: the profile's largest batch on several execution contexts at once."""
    args = ["trtexec", f"--loadEngine={engine}", f"--shapes={input_name}:{shape_str(shape)}"]
    if variant.dla_core is not None:
        args.append(f"--useDLACore={variant.dla_core}")
    args += [f"{streams_flag}={THROUGHPUT_STREAMS}", "--useSpinWait"]
    return " ".join(args)


def _engine_lines(recipe: Recipe, variant: EngineVariant, options: Mapping[str, Any], batch: BatchProfile,
                  input_shape: Sequence[Any], input_name: str, available: Sequence[str], num_dla_cores: int | None,
                  engines_dir: str) -> dict[str, Any]:
    """One engine of a recipe: its ONNX, what it runs in, its build, latency and throughput lines."""
    plan = plan_variant(variant, recipe, {**options, "typed_mode": recipe.typed_mode}, batch, num_dla_cores,
                        "fp16" in available)
    key = onnx_key(plan, available, recipe)
    if key not in available:
        raise EdgeresError(f"internal: recipe {recipe.name} builds {variant.label} from the {key} ONNX, "
                           "which the kit does not hold")
    engine = f"{engines_dir}/{variant.engine_file}"
    shapes = profile_shapes(input_shape, plan.batch)
    bench_shape = shapes[1] if shapes else [int(d) for d in input_shape]
    build = trtexec_command(plan, ONNX_FILES[key], engine, input_name, shapes,
                            timing_cache=f"{engines_dir}/timing.cache", stronglytyped_flag=recipe.stronglytyped_flag,
                            workspace_flag=recipe.workspace_flag)
    return {"variant": variant.label, "onnx": ONNX_FILES[key], "execution_precision": execution_precision(plan, key),
            "build": build, "bench": bench_command(variant, engine, input_name, bench_shape),
            "throughput": throughput_command(variant, engine, input_name, shapes[2] if shapes else bench_shape,
                                             recipe.streams_flag),
            "notes": list(plan.notes)}


def render_recipes(precisions: Sequence[str], options: Mapping[str, Any], batch: BatchProfile,
                   input_shape: Sequence[Any], input_name: str, available: Sequence[str], num_dla_cores: int | None,
                   tensorrt_max: str | None = None, engines_dir: str = "engines") -> list[dict[str, Any]]:
    """Each recipe for the device's TensorRT with, per engine, its ONNX and trtexec lines, and its notes."""
    opts = resolve_options(options)
    out = []
    for base in target_recipes(str(opts["min_tensorrt"]), tensorrt_max):
        recipe, typed_note = typed_recipe(base, str(opts["typed_mode"]))
        engines: list[dict[str, Any]] = []
        notes = [typed_note] if typed_note else []
        if recipe is not None:
            variants, more = recipe_variants(recipe, precisions, opts, num_dla_cores)
            notes += more
            engines = [_engine_lines(recipe, v, opts, batch, input_shape, input_name, available, num_dla_cores,
                                     engines_dir) for v in variants]
        shown = recipe or base
        out.append({"name": base.name, "label": shown.label, "typed_mode": shown.typed_mode,
                    "dla": shown.dla if num_dla_cores != 0 else "", "first": version_text(shown.first),
                    "below": version_text(shown.below) if shown.below else None, "max_opset": shown.max_opset,
                    "notes": notes, "engines": engines})
    return out


def check_rendered(recipes: Sequence[Mapping[str, Any]]) -> None:
    """Refuse a kit whose trtexec lines name an option a TensorRT version they are for does not take."""
    by_name = {r.name: r for r in RECIPES}
    for r in recipes:
        below = parse_version(r["below"]) if r.get("below") else None
        recipe = replace(by_name[r["name"]], first=parse_version(r["first"]), below=below)
        for version in edge_versions(recipe):
            for e in r["engines"]:
                for line in (e["build"], e["bench"], e["throughput"]):
                    bad = unknown_flags(line, version)
                    if bad:
                        raise EdgeresError(f"internal: recipe {r['name']} prints {', '.join(bad)}, which the trtexec "
                                           f"of TensorRT {version_text(version)} does not take: {line}")


def engine_table(recipes: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[tuple[str, ...]]]:
    """Headers and rows for ``edgeres kit show``: each engine, and the ONNX each recipe builds it from."""
    headers = ["engine", *(f"ONNX ({span_of(r['label'])})" for r in recipes)]
    names = list(dict.fromkeys(e["variant"] for r in recipes for e in r["engines"]))
    by_recipe = [{e["variant"]: e["onnx"] for e in r["engines"]} for r in recipes]
    return headers, [(name, *(onnx.get(name, "-") for onnx in by_recipe)) for name in names]


__all__ = ["bench_command", "check_rendered", "edge_versions", "engine_table", "recipe_variants", "render_recipes", "target_recipes",
           "throughput_command", "typed_recipe"]
