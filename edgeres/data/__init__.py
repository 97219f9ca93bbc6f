"""Calibration and validation sets, and the preprocessing spec they share."""

from edgeres.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec, to_rgb

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PreprocessSpec", "to_rgb"]
