"""The one preprocessing spec. It is data: it travels into every manifest and kit.

Torch-free (Pillow + numpy) on purpose: a device running a bundle must
preprocess exactly as calibration did, without PyTorch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeres.errors import EdgeresError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PreprocessSpec:
    """Resize the shorter side, center-crop, scale to [0, 1], normalize, lay out.

    Matches torchvision's ``Resize(resize) -> CenterCrop(crop) -> ToTensor -> Normalize``
    with bilinear, antialiased resizing (Pillow's default for downscaling).
    """

    resize: int = 256
    crop: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    channel_order: str = "RGB"
    layout: str = "NCHW"
    dtype: str = "float32"
    interpolation: str = "bilinear"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.crop < 1 or self.resize < self.crop:
            raise EdgeresError(f"preprocessing: need resize >= crop >= 1, got resize={self.resize} crop={self.crop}")
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std):
            raise EdgeresError("preprocessing: mean and std need one value per channel, std > 0")
        if self.channel_order not in ("RGB", "BGR"):
            raise EdgeresError(f"preprocessing: channel_order must be RGB or BGR, got {self.channel_order!r}")
        if self.layout not in ("NCHW", "NHWC"):
            raise EdgeresError(f"preprocessing: layout must be NCHW or NHWC, got {self.layout!r}")
        if self.dtype != "float32":
            raise EdgeresError(f"preprocessing: dtype must be float32, got {self.dtype!r}")
        if self.interpolation not in ("bilinear", "bicubic", "nearest"):
            raise EdgeresError(f"preprocessing: unknown interpolation {self.interpolation!r}")

    @classmethod
    def for_size(cls, crop: int, **kwargs: Any) -> PreprocessSpec:
        """The ImageNet recipe scaled to another crop (resize = crop * 256/224)."""
        return cls(resize=round(crop * 256 / 224), crop=crop, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        if not d["extra"]:
            d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessSpec:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise EdgeresError(f"preprocessing: unknown keys {sorted(unknown)}; known keys: {sorted(known)}")
        d = dict(d)
        for key in ("mean", "std"):
            if key in d:
                d[key] = tuple(float(v) for v in d[key])
        return cls(**d)

    def input_shape(self, batch: int | str = 1, channels: int = 3) -> tuple[int | str, ...]:
        if self.layout == "NCHW":
            return (batch, channels, self.crop, self.crop)
        return (batch, self.crop, self.crop, channels)

    def __call__(self, image: Any) -> np.ndarray:
        """A PIL image (any mode) -> one preprocessed array (CHW or HWC, float32)."""
        return self.normalize(self.crop_frame(image))

    def crop_frame(self, image: Any) -> np.ndarray:
        """The geometric half, which stays on the host: a PIL image (any mode) -> the resized,
        center-cropped RGB frame, uint8 HWC (what a camera pipeline hands the engine)."""
        from PIL import Image, ImageOps

        image = ImageOps.exif_transpose(image)
        image = to_rgb(image)
        modes = Image.Resampling
        resample = {"bilinear": modes.BILINEAR, "bicubic": modes.BICUBIC, "nearest": modes.NEAREST}[self.interpolation]
        w, h = image.size
        scale = self.resize / min(w, h)
        new_w, new_h = max(self.crop, round(w * scale)), max(self.crop, round(h * scale))
        image = image.resize((new_w, new_h), resample)
        left, top = round((new_w - self.crop) / 2.0), round((new_h - self.crop) / 2.0)
        image = image.crop((left, top, left + self.crop, top + self.crop))
        return np.asarray(image, dtype=np.uint8)

    def normalize(self, frame: np.ndarray) -> np.ndarray:
        """The arithmetic half, which an engine can take over: uint8 HWC RGB -> /255, channel
        order, (x - mean) / std, layout; float32."""
        arr = np.asarray(frame, dtype=np.float32) / 255.0
        if self.channel_order == "BGR":
            arr = arr[..., ::-1]
        arr = (arr - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.layout == "NCHW":
            arr = arr.transpose(*range(arr.ndim - 3), -1, -3, -2)
        return np.ascontiguousarray(arr, dtype=np.float32)


def to_rgb(image: Any) -> Any:
    """Any Pillow mode (1, L, P, RGBA, LA, CMYK, YCbCr, I;16, I, F, ...) -> RGB; alpha composited on black.

    16-bit images map 0..65535 to 0..255 (not clipped at 255, not stretched per image).
    """
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        # 16-bit grayscale: the full 0..65535 range maps to 0..255, whatever this image's content
        arr = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8))
    elif image.mode in ("I", "F"):
        # 32-bit int or float: no bit depth is recorded, so infer it from the values
        arr = np.asarray(image, dtype=np.float64)
        peak = float(arr.max()) if arr.size else 0.0
        scale = 255.0 if (image.mode == "F" and peak <= 1.0) else (255.0 / 65535.0 if peak > 255 else 1.0)
        image = Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (0, 0, 0))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")
