"""The ResNet family: one definition, depths 18/34/50/101/152.

Module names and parameter shapes follow torchvision's ``models/resnet.py``
exactly, so a torchvision checkpoint loads with ``strict=True``. The stride of a
Bottleneck sits on its 3x3 convolution ("ResNet v1.5"), as in torchvision.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgeres import limits
from edgeres.errors import UsageError

Shortcut = Literal["projection", "zeropad"]

# depth -> (block kind, blocks per stage)
DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
MIN_INPUT_SIZE = 32


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """The paper's option A: strided identity, extra channels filled with zeros. No parameters."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra = out_planes - in_planes

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


def make_shortcut(in_planes: int, out_planes: int, stride: int, kind: Shortcut) -> nn.Module | None:
    """None (identity) where shapes match, else a projection or a zero-pad shortcut."""
    if stride == 1 and in_planes == out_planes:
        return None
    if kind == "zeropad":
        return ZeroPadShortcut(in_planes, out_planes, stride)
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))


def _add_shortcut(block: BasicBlock | Bottleneck, out: Tensor, x: Tensor) -> Tensor:
    """The residual branch plus the block's input (projected where shapes change); the branch
    alone when the block's shortcut is switched off."""
    if not block.residual:
        return out
    return out + (x if block.downsample is None else block.downsample(x))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.residual = True  # False: the paper's "plain" network (used to show what shortcuts do)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(_add_shortcut(self, out, x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.residual = True  # False: the paper's "plain" network (used to show what shortcuts do)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(_add_shortcut(self, out, x))


BLOCKS: dict[str, type[BasicBlock | Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """Stem (7x7/2 conv, 3x3/2 max-pool), four stages, global average pool, one FC layer."""

    def __init__(
        self,
        depth: int = 50,
        num_classes: int = 1000,
        in_channels: int = 3,
        shortcut: Shortcut = "projection",
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        check_depth(depth)
        check_num_classes(num_classes)
        if in_channels < 1:
            raise UsageError(f"in_channels must be at least 1, got {in_channels}")
        limits.check("in_channels", in_channels, limits.IN_CHANNELS)
        if shortcut not in ("projection", "zeropad"):
            raise UsageError(f"unknown shortcut {shortcut!r}: choose 'projection' or 'zeropad'")
        kind, counts = DEPTHS[depth]
        block = BLOCKS[kind]
        self.depth = depth
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.shortcut = shortcut
        self.block_kind = kind
        self.stage_blocks = counts

        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_stage(block, 64, counts[0], stride=1)
        self.layer2 = self._make_stage(block, 128, counts[1], stride=2)
        self.layer3 = self._make_stage(block, 256, counts[2], stride=2)
        self.layer4 = self._make_stage(block, 512, counts[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        self._init_weights(zero_init_residual)

    def _make_stage(self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int) -> nn.Sequential:
        out_planes = planes * block.expansion
        layers = [block(self.in_planes, planes, stride, make_shortcut(self.in_planes, out_planes, stride, self.shortcut))]
        self.in_planes = out_planes
        layers += [block(self.in_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # Each residual branch starts as zero, so every block starts as identity.
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_bn().weight)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def check_depth(depth: int) -> None:
    if depth not in DEPTHS:
        raise UsageError(f"unsupported depth {depth}: choose one of {', '.join(map(str, DEPTHS))}")


def check_num_classes(num_classes: int) -> None:
    if num_classes < 1:
        raise UsageError(f"the class count must be a positive integer, got {num_classes}")
    limits.check("the class count", num_classes, limits.NUM_CLASSES)


def check_input_size(size: int) -> None:
    if size < MIN_INPUT_SIZE:
        raise UsageError(f"input size {size} is too small: a ResNet needs at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}")
    limits.check("the input size", size, limits.INPUT_SIZE)


def resnet18(**kwargs: object) -> ResNet:
    return ResNet(18, **kwargs)  # type: ignore[arg-type]


def resnet34(**kwargs: object) -> ResNet:
    return ResNet(34, **kwargs)  # type: ignore[arg-type]


def resnet50(**kwargs: object) -> ResNet:
    return ResNet(50, **kwargs)  # type: ignore[arg-type]


def resnet101(**kwargs: object) -> ResNet:
    return ResNet(101, **kwargs)  # type: ignore[arg-type]


def resnet152(**kwargs: object) -> ResNet:
    return ResNet(152, **kwargs)  # type: ignore[arg-type]
