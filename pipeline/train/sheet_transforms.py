"""Whole-sheet preprocessing of the seed ArcFace model (Higuchi & Yanai): one place for training and evaluation.

Both sides first binarise the 8-bit sheet at a threshold and crop it to the drawing's bounding box (what the seed's
dataset does before any transform), then training resizes the short side, random-crops with white padding, flips,
blurs and erases, while evaluation resizes and centre-crops. The settings travel in the exported model's meta
(`designclip.json`, key `sheet_transforms`), so evaluation rebuilds exactly the transform the model was trained with.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms as T

META_KEY = "sheet_transforms"


@dataclass(frozen=True)
class SheetTransformSettings:
    """The seed notebook's preprocessing as data (defaults: its values), recorded so evaluation can rebuild it."""

    image_size: int = 384
    binarize_threshold: int | None = 120  # pixel > threshold -> white, else black; None keeps the gray levels
    crop_to_drawing: bool = True  # crop to the bounding box of the ink before resizing
    fill: int = 255  # the random crop's padding colour (white paper; after the short-side resize it never pads)
    hflip: float = 0.5
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 1.0)
    erase_p: float = 0.5
    erase_scale: tuple[float, float] = (0.22, 0.33)
    erase_ratio: tuple[float, float] = (0.3, 3.3)
    erase_value: float = 1.0  # erased patches are white (in [0, 1], before normalising)
    mean: float = 0.5
    std: float = 0.5
    channels: int = 1  # 1: gray input (timm in_chans=1); 3: gray replicated for RGB towers

    def check(self) -> None:
        if self.image_size < 8:
            raise ValueError(f"image_size {self.image_size}: use at least 8 px (the seed uses 384)")
        if self.binarize_threshold is not None and not 0 <= self.binarize_threshold <= 255:
            raise ValueError(f"binarize_threshold {self.binarize_threshold}: use 0..255 or None to keep gray")
        if self.channels not in (1, 3):
            raise ValueError(f"channels {self.channels}: use 1 (gray) or 3 (RGB)")
        if self.std <= 0:
            raise ValueError(f"std {self.std}: use a positive value")

    def record(self) -> dict[str, Any]:
        """JSON-ready settings (tuples as lists) for run.json and designclip.json."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SheetTransformSettings:
        """Settings back from `record()`; unknown keys are an error so a newer model is not silently misread."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(record) - names)
        if unknown:
            raise ValueError(f"unknown sheet transform settings {unknown}: upgrade designclip to read this model")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in record.items()}
        return cls(**values)


HIGUCHI_SHEETS = SheetTransformSettings()
PRESETS: dict[str, SheetTransformSettings] = {"higuchi": HIGUCHI_SHEETS}

Preset = str | SheetTransformSettings | Mapping[str, Any]


def sheet_settings(preset: Preset) -> SheetTransformSettings:
    """A preset name ('higuchi'), settings, or a recorded dict (a model's meta) as checked settings."""
    if isinstance(preset, SheetTransformSettings):
        settings = preset
    elif isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"sheet transform preset {preset!r}: use one of {', '.join(sorted(PRESETS))}")
        settings = PRESETS[preset]
    else:
        record = dict(preset.get(META_KEY, preset))
        record.pop("name", None)  # a model's record names its preset beside the settings
        settings = SheetTransformSettings.from_record(record)
    settings.check()
    return settings


def binarize(img: Image.Image, threshold: int) -> Image.Image:
    """8-bit gray, every pixel above `threshold` white and the rest black (cv2.THRESH_BINARY's rule)."""
    return img.convert("L").point(lambda p: 255 if p > threshold else 0)


def crop_to_drawing(img: Image.Image, ink_below: int = 128) -> Image.Image:
    """The bounding box of the dark pixels (the drawing, its labels and figure numbers); a blank sheet is kept."""
    gray = img.convert("L")
    box = ImageOps.invert(gray).point(lambda p: 255 if p > 255 - ink_below else 0).getbbox()
    return gray.crop(box) if box else gray


class SheetCleanup:
    """Binarise then crop to the drawing: the seed's dataset step before either transform."""

    def __init__(self, settings: SheetTransformSettings) -> None:
        self.settings = settings

    def __call__(self, img: Image.Image) -> Image.Image:
        img = img.convert("L")
        if self.settings.binarize_threshold is not None:
            img = binarize(img, self.settings.binarize_threshold)
        return crop_to_drawing(img) if self.settings.crop_to_drawing else img


class RandomGaussianBlur:
    """PIL Gaussian blur with a radius drawn uniformly from `sigma` (the seed's MoCo-style blur, kept weak)."""

    def __init__(self, sigma: tuple[float, float]) -> None:
        self.sigma = sigma

    def __call__(self, img: Image.Image) -> Image.Image:
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(*self.sigma)))


def _channels(settings: SheetTransformSettings) -> list[Callable[[Any], Any]]:
    return [T.Grayscale(num_output_channels=settings.channels)]


def _normalise(settings: SheetTransformSettings) -> Callable[[torch.Tensor], torch.Tensor]:
    return T.Normalize([settings.mean] * settings.channels, [settings.std] * settings.channels)


def train_transform(preset: Preset = "higuchi") -> Callable[[Image.Image], torch.Tensor]:
    """Sheet -> augmented (channels, size, size) tensor: cleanup, resize short side, white-padded random crop,
    h-flip, Gaussian blur, random erasing (white), normalise."""
    s = sheet_settings(preset)
    steps: list[Callable[[Any], Any]] = [SheetCleanup(s), *_channels(s), T.Resize(s.image_size),
                                         T.RandomCrop(s.image_size, pad_if_needed=True, fill=s.fill)]
    if s.hflip > 0:
        steps.append(T.RandomHorizontalFlip(p=s.hflip))
    if s.blur_p > 0:
        steps.append(T.RandomApply([RandomGaussianBlur(s.blur_sigma)], p=s.blur_p))
    steps.append(T.ToTensor())
    if s.erase_p > 0:
        steps.append(T.RandomErasing(p=s.erase_p, scale=s.erase_scale, ratio=s.erase_ratio, value=s.erase_value))
    steps.append(_normalise(s))
    return T.Compose(steps)


def eval_transform(preset: Preset = "higuchi") -> Callable[[Image.Image], torch.Tensor]:
    """Sheet -> (channels, size, size) tensor for embedding: cleanup, resize short side, centre crop, normalise."""
    s = sheet_settings(preset)
    return T.Compose([SheetCleanup(s), *_channels(s), T.Resize(s.image_size), T.CenterCrop(s.image_size),
                      T.ToTensor(), _normalise(s)])
