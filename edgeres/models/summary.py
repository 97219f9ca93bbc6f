"""Parameter and MAC counts, and the per-stage architecture table (the paper's Table 1).

Everything is measured by running the real modules once with forward hooks, so
the numbers follow the model rather than a hard-coded table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from edgeres.models.resnet import ResNet


@dataclass
class StageRow:
    name: str
    blocks: str
    stride: int
    input_size: str
    output_size: str
    kernels: str
    out_channels: int
    macs: int


@dataclass
class ModelSummary:
    depth: int
    num_classes: int
    input_size: int
    in_channels: int
    shortcut: str
    params: int
    macs: int
    stages: list[StageRow] = field(default_factory=list)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "gmacs": round(self.gmacs, 3)}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates of one conv or linear layer for one image."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        per_output = (module.in_channels // module.groups) * kh * kw
        return output[0].numel() * per_output
    if isinstance(module, nn.Linear):
        return output[0].numel() * module.in_features
    return 0


def _kernels(stage: nn.Sequential) -> str:
    block = stage[0]
    convs = [m for name, m in block.named_children() if name.startswith("conv")]
    return ", ".join(f"{c.kernel_size[0]}x{c.kernel_size[1]}x{c.out_channels}" for c in convs)


def summarize(model: ResNet, input_size: int = 224) -> ModelSummary:
    stage_names = ["conv1", "layer1", "layer2", "layer3", "layer4", "fc"]
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    macs: dict[str, int] = dict.fromkeys(stage_names, 0)
    hooks = []

    def record_shape(name: str):
        def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            shapes[name] = (tuple(inputs[0].shape), tuple(output.shape))
        return hook

    def record_macs(stage: str):
        def hook(m: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            macs[stage] += _layer_macs(m, output)
        return hook

    for name in stage_names + ["maxpool"]:
        hooks.append(getattr(model, name).register_forward_hook(record_shape(name)))
    for full_name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            stage = full_name.split(".")[0]
            hooks.append(module.register_forward_hook(record_macs(stage)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, model.in_channels, input_size, input_size))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()

    def hw(shape: tuple[int, ...]) -> str:
        return f"{shape[2]}x{shape[3]}" if len(shape) == 4 else f"{shape[1]}"

    kind = "BasicBlock" if model.block_kind == "basic" else "Bottleneck"
    rows = [
        StageRow("conv1", "7x7 conv + 3x3 max-pool", 4, hw(shapes["conv1"][0]), hw(shapes["maxpool"][1]),
                 "7x7x64 /2, pool 3x3 /2", 64, macs["conv1"]),
    ]
    for i, count in enumerate(model.stage_blocks, start=1):
        name = f"layer{i}"
        stage = getattr(model, name)
        (shape_in, shape_out) = shapes[name]
        rows.append(StageRow(name, f"{count} x {kind}", 1 if i == 1 else 2, hw(shape_in), hw(shape_out),
                             _kernels(stage), shape_out[1], macs[name]))
    fc_in, fc_out = shapes["fc"]
    rows.append(StageRow("fc", "avg-pool + fully connected", 1, hw(shapes["layer4"][1]), str(fc_out[1]),
                         f"{fc_in[1]} -> {fc_out[1]}", fc_out[1], macs["fc"]))
    return ModelSummary(
        depth=model.depth, num_classes=model.num_classes, input_size=input_size, in_channels=model.in_channels,
        shortcut=model.shortcut, params=count_params(model), macs=sum(macs.values()), stages=rows,
    )
