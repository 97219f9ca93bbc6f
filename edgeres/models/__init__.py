"""The ResNet family, checkpoint loading and architecture summaries."""

from edgeres.models.checkpoint import load_checkpoint, load_state_dict_strict, read_state_dict
from edgeres.models.resnet import (
    DEPTHS,
    MIN_INPUT_SIZE,
    BasicBlock,
    Bottleneck,
    ResNet,
    ZeroPadShortcut,
    check_depth,
    check_input_size,
    check_num_classes,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
)
from edgeres.models.summary import ModelSummary, StageRow, count_params, summarize

__all__ = [
    "DEPTHS", "MIN_INPUT_SIZE", "BasicBlock", "Bottleneck", "ModelSummary", "ResNet", "StageRow",
    "ZeroPadShortcut", "check_depth", "check_input_size", "check_num_classes", "count_params",
    "load_checkpoint", "load_state_dict_strict", "read_state_dict", "resnet18", "resnet34",
    "resnet50", "resnet101", "resnet152", "summarize",
]
