"""The paper's image transforms (open-reid / BUC): RandomSizedRectCrop + flip, or resize."""

from __future__ import annotations

import math

import torch
from PIL import Image
from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomSizedRectCrop:
    """Crop a random tall rectangle and resize it to `(height, width)`.

    Area fraction ~ U(0.64, 1), aspect h/w ~ U(2, 3); after 10 failed tries the whole
    image is resized. Not torchvision's RandomResizedCrop: that one samples the
    aspect log-uniformly and falls back to a centre crop, so it is not the same
    distribution. Randomness comes from torch's RNG, which DataLoader seeds per worker.
    """

    def __init__(self, height: int, width: int, scale: tuple[float, float] = (0.64, 1.0),
                 aspect: tuple[float, float] = (2.0, 3.0), tries: int = 10,
                 interpolation: Image.Resampling = Image.Resampling.BILINEAR) -> None:
        if height < 1 or width < 1:
            raise ValueError(f"crop size must be positive, got {height}x{width}")
        self.height, self.width = height, width
        self.scale, self.aspect, self.tries = scale, aspect, tries
        self.interpolation = interpolation

    def _uniform(self, low: float, high: float) -> float:
        return low + (high - low) * torch.rand(()).item()

    def __call__(self, img: Image.Image) -> Image.Image:
        img_w, img_h = img.size
        for _ in range(self.tries):
            area = self._uniform(*self.scale) * img_w * img_h
            aspect = self._uniform(*self.aspect)
            h = int(round(math.sqrt(area * aspect)))
            w = int(round(math.sqrt(area / aspect)))
            if 0 < w <= img_w and 0 < h <= img_h:
                x1 = int(torch.randint(0, img_w - w + 1, ()).item())
                y1 = int(torch.randint(0, img_h - h + 1, ()).item())
                img = img.crop((x1, y1, x1 + w, y1 + h))
                return img.resize((self.width, self.height), self.interpolation)
        return img.resize((self.width, self.height), self.interpolation)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(height={self.height}, width={self.width}, "
                f"scale={self.scale}, aspect={self.aspect}, tries={self.tries})")


class RandomChannelGain:
    """Multiply each RGB channel by its own factor in [1 - s, 1 + s]: a camera colour cast."""

    def __init__(self, strength: float) -> None:
        self.strength = strength

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.strength * (2.0 * torch.rand(3, 1, 1) - 1.0)
        return (img * gain).clamp_(0.0, 1.0)


def train_transform(height: int, width: int, photometric: float = 0.0) -> T.Compose:
    """RandomSizedRectCrop + horizontal flip (the paper) + optional camera-like photometry.

    `photometric` > 0 adds brightness/contrast/saturation jitter and a per-channel
    colour cast of that strength: instance-level training then learns to ignore
    illumination and white balance, which differ between cameras (not in the paper).
    """
    return T.Compose([RandomSizedRectCrop(height, width), T.RandomHorizontalFlip(), *photometric_to_tensor(photometric)])


def photometric_to_tensor(photometric: float) -> list:
    """[colour jitter], ToTensor, [per-channel gain], ImageNet normalisation: the shared tail of the training transforms."""
    steps: list = []
    if photometric > 0:
        steps.append(T.ColorJitter(brightness=photometric, contrast=photometric, saturation=photometric))
    steps.append(T.ToTensor())
    if photometric > 0:
        steps.append(RandomChannelGain(photometric / 2))
    steps.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return steps


def eval_transform(height: int, width: int) -> T.Compose:
    """Resize to `(height, width)` + ToTensor + ImageNet normalisation (no flip)."""
    return T.Compose([
        T.Resize((height, width), interpolation=T.InterpolationMode.BILINEAR),
        T.ToTensor(),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
