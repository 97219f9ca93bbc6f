"""What the shortcuts do for gradients: the gradient norm reaching each stage's input.

The ResNet paper's argument is that identity shortcuts give the loss a short path back to
the early layers. ``gradient_flow`` measures it on the real model: one forward and backward
pass of a seeded batch, and the L2 norm of dLoss/dInput at the input of conv1, of each
stage and of the classifier, for the network as built and for the same network with every
shortcut switched off (the paper's "plain" network, same weights). A randomly initialised
model is measured in training mode (batch statistics: its running statistics are not real
yet); a checkpoint in eval mode, as it runs when deployed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeres.models.resnet import BasicBlock, Bottleneck, ResNet

POINTS = ("conv1", "layer1", "layer2", "layer3", "layer4", "fc")


@dataclass
class GradientRow:
    """Gradient at one point of the network, with and without shortcuts.

    ``*_norm``: mean over the batch of each image's ||dLoss/dInput|| at that point;
    ``*_ratio``: that norm divided by the norm at the classifier's input (1.0 at ``fc``):
    how much of the gradient survives the way back from the last layer.
    """

    point: str
    shape: str
    residual_norm: float
    plain_norm: float
    residual_ratio: float
    plain_ratio: float


def set_shortcuts(model: ResNet, enabled: bool) -> None:
    """Switch every block's shortcut on (the ResNet) or off (the plain network)."""
    for module in model.modules():
        if isinstance(module, (BasicBlock, Bottleneck)):
            module.residual = enabled


def _stage_input_gradients(model: ResNet, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """dLoss/dInput at each point of ``POINTS`` for one batch (cross-entropy loss)."""
    captured: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Any:
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            inputs[0].retain_grad()
            captured[name] = inputs[0]
        return hook

    handles = [getattr(model, name).register_forward_pre_hook(keep(name)) for name in POINTS if name != "conv1"]
    try:
        x = images.clone().requires_grad_(True)
        captured["conv1"] = x
        loss = nn.functional.cross_entropy(model(x), labels)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    return {name: captured[name].grad.detach() for name in POINTS}  # type: ignore[union-attr]


def _norms(grads: dict[str, torch.Tensor]) -> dict[str, float]:
    return {name: float(g.flatten(1).norm(dim=1).mean()) for name, g in grads.items()}


def gradient_flow(model: ResNet, input_size: int = 64, batch: int = 8, seed: int = 0,
                  trained: bool = False) -> list[GradientRow]:
    """One row per point of ``POINTS``: gradient norms with and without shortcuts (same weights)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, model.in_channels, input_size, input_size, generator=generator)
    labels = torch.randint(0, model.num_classes, (batch,), generator=generator)
    saved = {name: b.clone() for name, b in model.named_buffers()}  # training mode updates BN statistics
    model.eval() if trained else model.train()
    shapes: dict[str, str] = {}
    results = {}
    try:
        for enabled in (True, False):
            set_shortcuts(model, enabled)
            model.zero_grad(set_to_none=True)
            grads = _stage_input_gradients(model, images, labels)
            shapes = {name: "x".join(map(str, g.shape[1:])) for name, g in grads.items()}
            results[enabled] = _norms(grads)
    finally:
        set_shortcuts(model, True)
        model.zero_grad(set_to_none=True)
        model.eval()
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(saved[name])
    residual, plain = results[True], results[False]
    return [GradientRow(point=name, shape=shapes[name], residual_norm=residual[name], plain_norm=plain[name],
                        residual_ratio=residual[name] / max(residual["fc"], 1e-30),
                        plain_ratio=plain[name] / max(plain["fc"], 1e-30)) for name in POINTS]


def rows_to_dicts(rows: list[GradientRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


def plot_gradient_flow(flows: dict[int, list[GradientRow]], path: Path) -> Path:
    """Gradient ratio per point (log scale), one line per depth, solid with shortcuts, dashed without."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, (depth, rows) in enumerate(sorted(flows.items())):
        colour = f"C{i}"
        xs = range(len(rows))
        ax.plot(xs, [r.residual_ratio for r in rows], "-o", color=colour, label=f"ResNet-{depth}")
        ax.plot(xs, [r.plain_ratio for r in rows], "--x", color=colour, label=f"plain-{depth} (no shortcuts)")
    ax.set_xticks(range(len(POINTS)), [f"{p} input" for p in POINTS], rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("||dL/dx|| / ||dL/dx|| at fc input")
    ax.set_title("Gradient reaching each stage's input, at the same weights")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def format_gradient_table(rows: list[GradientRow]) -> str:
    from edgeres.table import format_table

    cells = [(f"{r.point} input", r.shape, f"{r.residual_norm:.3g}", f"{r.residual_ratio:.3g}",
              f"{r.plain_norm:.3g}", f"{r.plain_ratio:.3g}") for r in rows]
    return format_table(["point", "shape", "ResNet ||g||", "ResNet ratio", "plain ||g||", "plain ratio"], cells,
                        align="llrrrr")
