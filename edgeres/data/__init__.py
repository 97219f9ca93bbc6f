"""Calibration and validation sets, and the preprocessing spec they share.

Torch-free: everything here imports with Pillow and numpy only (training the demo model
imports torch when it runs).
"""

from edgeres.data.arrays import ArraySet
from edgeres.data.demo import DATA_VERSION, DIGITS_PREPROCESS, demo_digits_dir, demo_photos_dir
from edgeres.data.demo_model import demo_model_dir, ensure_demo_model
from edgeres.data.folders import FolderSet, load_image
from edgeres.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec, to_rgb
from edgeres.data.sets import ImageSet, SkippedFilesWarning
from edgeres.data.sources import CalibrationSpec, list_specs, open_set
from edgeres.fileio import cache_dir

__all__ = [
    "DATA_VERSION", "DIGITS_PREPROCESS", "IMAGENET_MEAN", "IMAGENET_STD", "ArraySet", "CalibrationSpec",
    "FolderSet", "ImageSet", "PreprocessSpec", "SkippedFilesWarning", "cache_dir", "demo_digits_dir",
    "demo_model_dir", "demo_photos_dir", "ensure_demo_model", "list_specs", "load_image", "open_set", "to_rgb",
]
