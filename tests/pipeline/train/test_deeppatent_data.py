"""ArcFace with the seed's tiny timm SwinV2 on a DeepPatent-layout folder built from the fixture TIFFs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from designclip.pipeline.train.deeppatent_data import TRAIN_LIST, SheetBatches, patent_of, read_train_list
from designclip.pipeline.train.driver import train_deeppatent
from designclip.pipeline.train.export import exported_eval_transform, load_exported, read_export_meta
from designclip.pipeline.train.higuchi import preset_options
from designclip.pipeline.train.options import LoopSettings, TrainError
from PIL import Image

SAMPLES = Path(__file__).parents[3] / "designclip" / "sample" / "patents"
TINY_SWINV2 = {"embed_dim": 16, "depths": [1, 1], "num_heads": [1, 1], "img_size": 64, "window_size": 4}
PATENTS = ("USD0907292-20210105", "USD0907293-20210105", "USD0909824-20210209")


def build_folder(root: Path, sheets_per_patent: int = 2) -> Path:
    """images/I{date}/{patent}/{sheet}.png (8-bit PNGs decoded from the fixture TIFFs) + lists/train_patent_trn.txt."""
    lines = []
    for label, patent in enumerate(PATENTS, start=1):
        date = patent.rsplit("-", 1)[1]
        for tif in sorted((SAMPLES / patent).glob("*.TIF"))[:sheets_per_patent]:
            rel = f"I{date}/{patent}/{tif.stem}.png"
            (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.open(tif).convert("L").save(root / "images" / rel)
            lines.append(f"{rel} {label}\n")
    (root / "lists").mkdir(parents=True)
    (root / TRAIN_LIST).write_text("".join(lines))
    return root


def tiny_options(**changes):
    return preset_options("higuchi", model="swinv2_tiny_window8_256", pretrained=None, timm_kwargs=TINY_SWINV2,
                          image_size=64, batch_size=4, lr=1e-3, lr_head=5e-2, dropout=0.0, **changes)


def test_train_list_classes_are_patents(tmp_path):
    sheets = read_train_list(build_folder(tmp_path / "dp"))
    assert sorted(sheets.patents) == sorted(PATENTS) and len(sheets.rows) == 6
    assert {label for rel, label in sheets.rows if patent_of(rel) == PATENTS[1]} == {sheets.patents[PATENTS[1]]}


def test_missing_sheet_is_named(tmp_path):
    root = build_folder(tmp_path / "dp")
    first = (root / TRAIN_LIST).read_text().split()[0]
    (root / "images" / first).unlink()
    with pytest.raises(TrainError, match=first.split("/")[-1]):
        read_train_list(root)


def test_stream_resumes_where_it_stopped(tmp_path):
    sheets = read_train_list(build_folder(tmp_path / "dp"))
    whole = SheetBatches(sheets, 4, lambda img: torch.zeros(1, 8, 8), seed=3)
    keys = [b.keys for _, b in zip(range(5), iter(whole), strict=False)]
    resumed = SheetBatches(sheets, 4, lambda img: torch.zeros(1, 8, 8), seed=3, skip_batches=2)
    assert [b.keys for _, b in zip(range(3), iter(resumed), strict=False)] == keys[2:]
    stream = [k for ks in keys for k in ks]
    assert sorted(stream[:6]) == sorted(rel for rel, _ in sheets.rows)  # each epoch holds every sheet once
    assert stream[:6] != stream[6:12]  # and each epoch has its own order


def test_tiny_swinv2_learns_exports_and_reloads(tmp_path):
    root = build_folder(tmp_path / "dp")
    options = tiny_options(steps=12)
    stats = train_deeppatent(str(tmp_path / "data"), str(root), "higuchi-tiny", options,
                             LoopSettings(log_every=1, checkpoint_every=100, workers=0))
    losses = [json.loads(line)["loss"] for line in Path(stats["metrics"]).read_text().splitlines()]
    assert stats["finished"] and len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # focal ArcFace on 3 patents goes down
    folder = Path(stats["model_dir"])
    meta = read_export_meta(folder)
    assert meta["backbone"] == "timm" and meta["sheet_transforms"]["image_size"] == 64
    assert meta["preprocess"]["preset"]["name"] == "higuchi" and meta["arcface"]["easy_margin"] is True
    assert (folder / "trained_patents.txt").read_text().split() == sorted(PATENTS)
    model = load_exported(folder)
    again = load_exported(folder)
    transform = exported_eval_transform(model)
    sheet = Image.open(root / "images" / (root / TRAIN_LIST).read_text().split()[0])
    x = torch.stack([transform(sheet)])
    assert x.shape == (1, 1, 64, 64)
    with torch.no_grad():
        a, b = model.encode_image(x), again.encode_image(x)
    assert a.shape == (1, 512) and torch.allclose(a, b)
