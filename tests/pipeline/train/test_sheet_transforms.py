"""The seed's sheet preprocessing on a real fixture sheet: binarise, crop to the drawing, white padding, records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from designclip.pipeline.train.sheet_transforms import (
    HIGUCHI_SHEETS,
    SheetTransformSettings,
    binarize,
    crop_to_drawing,
    eval_transform,
    sheet_settings,
    train_transform,
)
from PIL import Image
from torchvision import transforms as T

SHEET = Path(__file__).parents[3] / "designclip/sample/patents/USD0907292-20210105/USD0907292-20210105-D00001.TIF"


def real_sheet() -> Image.Image:
    return Image.open(SHEET).convert("L")


def test_higuchi_defaults_are_the_notebooks():
    s = sheet_settings("higuchi")
    assert (s.image_size, s.binarize_threshold, s.crop_to_drawing, s.fill, s.channels) == (384, 120, True, 255, 1)
    assert (s.hflip, s.blur_p, s.blur_sigma, s.erase_p, s.mean, s.std) == (0.5, 0.5, (0.1, 1.0), 0.5, 0.5, 0.5)


def test_binarise_and_crop_to_drawing_on_a_real_sheet():
    sheet = real_sheet()
    gray = sheet.point(lambda p: 130 if p == 255 else p)  # paper just above the threshold, ink far below
    binary = np.asarray(binarize(gray, 120))
    assert set(np.unique(binary)) <= {0, 255} and binary.mean() > 200  # white paper stays white
    cropped = crop_to_drawing(binarize(gray, 120))
    arr = np.asarray(cropped)
    assert cropped.width < sheet.width and cropped.height < sheet.height
    for edge in (arr[0], arr[-1], arr[:, 0], arr[:, -1]):  # the box is tight: ink touches each side
        assert (edge == 0).any()


def test_blank_sheet_is_kept_whole():
    blank = Image.new("L", (50, 80), 255)
    assert crop_to_drawing(blank).size == (50, 80)


def test_eval_transform_shape_range_and_record_round_trip():
    settings = SheetTransformSettings(image_size=96)
    rebuilt = sheet_settings({"name": "higuchi", **settings.record()})  # what a model's meta carries
    assert rebuilt == settings
    x = eval_transform(rebuilt)(real_sheet())
    assert x.shape == (1, 96, 96) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, eval_transform(settings)(real_sheet()))  # no randomness at evaluation


def test_train_random_crop_pads_with_white():
    settings = SheetTransformSettings(image_size=64, crop_to_drawing=False, hflip=0, blur_p=0, erase_p=0)
    pipeline = train_transform(settings)
    tall = Image.new("L", (20, 200), 0)  # all ink
    x = pipeline(tall)
    assert x.shape == (1, 64, 64) and x.max() == -1.0  # the short side is resized to 64: nothing to pad here
    crop = next(t for t in pipeline.transforms if isinstance(t, T.RandomCrop))
    padded = np.asarray(crop(Image.new("L", (30, 40), 0)))  # smaller than the crop: padded up to 64 x 64
    assert padded.shape == (64, 64) and (padded == 0).sum() == 30 * 40 and (padded == 255).sum() == 64 * 64 - 1200


def test_unknown_preset_and_settings_are_refused():
    with pytest.raises(ValueError, match="higuchi"):
        sheet_settings("nope")
    with pytest.raises(ValueError, match="upgrade"):
        SheetTransformSettings.from_record({**HIGUCHI_SHEETS.record(), "new_knob": 1})
