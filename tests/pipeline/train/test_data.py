"""The training stream on a real release: epoch accounting, batch shapes, patent grouping, seeds, resume, bad PNGs."""

from __future__ import annotations

import io
import itertools
import json
import logging
import struct
import tarfile
import warnings
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import designclip.pipeline.train.data as td
import open_clip
import pyarrow.parquet as pq
import pytest
import torch
from designclip.pipeline.train.data import (
    PatentBatches,
    TrainBatch,
    locarno_index,
    make_loader,
    patent_index,
    split_shards,
    steps_per_epoch,
)
from PIL import Image
from torchvision.transforms import PILToTensor

from tests.fixtures.release import read_samples, release_root

Transform = Callable[[Image.Image], torch.Tensor]
Tokenize = Callable[[list[str]], torch.Tensor]


@pytest.fixture(scope="module")
def train_tf() -> Transform:
    return open_clip.image_transform(64, is_train=True)


@pytest.fixture(scope="module")
def eval_tf() -> Transform:
    return open_clip.image_transform(64, is_train=False)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenize:
    return open_clip.get_tokenizer("ViT-B-32")


@pytest.fixture
def root(release_data: Path, release_v1: dict[str, Any]) -> Path:
    return release_root(release_data, "v1")


@pytest.fixture
def manifest(root: Path) -> dict[str, dict[str, Any]]:
    """Train manifest rows by key, in release order."""
    return {r["key"]: r for r in pq.read_table(root / "manifest.parquet").to_pylist() if r["split"] == "train"}


@pytest.fixture
def make(root: Path, train_tf: Transform, tokenizer: Tokenize) -> Callable[..., PatentBatches]:
    """A PatentBatches over the release's train split; keyword arguments override the defaults."""
    shards, _ = split_shards(str(root), "train")

    def build(**kw: Any) -> PatentBatches:
        args: dict[str, Any] = dict(shards=shards, batch_size=4, transform=train_tf, tokenize=tokenizer,
                                    patents=patent_index(str(root)), locarno=locarno_index(str(root)))
        return PatentBatches(**(args | kw))

    return build


def take(ds: PatentBatches, n: int, workers: int = 0) -> list[TrainBatch]:
    return list(itertools.islice(make_loader(ds, workers), n))


def flat_keys(batches: list[TrainBatch]) -> list[str]:
    return [k for b in batches for k in b.keys]


def patent_of(key: str) -> str:
    return key.split("_", 1)[0]


def test_split_files_give_shards_counts_and_label_maps(root: Path, release_v1: dict[str, Any],
                                                       manifest: dict[str, dict[str, Any]], make: Any,
                                                       tmp_path: Path) -> None:
    shards, total = split_shards(str(root), "train")
    sizes = json.loads((root / "train" / "sizes.json").read_text())
    assert shards == [f"{root}/train/{name}" for name in sorted(sizes)] and len(shards) > 2
    assert total == sum(sizes.values()) == release_v1["splits"]["train"]["samples"] == len(manifest)
    assert all(Path(s).is_file() for s in shards)

    patents = patent_index(str(root))
    assert list(patents) == sorted({r["patent_id"] for r in manifest.values()})
    assert list(patents.values()) == list(range(len(patents)))
    assert set(patent_index(str(root), "val")).isdisjoint(patents)

    locarno = locarno_index(str(root))
    assert len(locarno) == 32 and locarno["01"] == 0 and locarno["07"] == 6 and locarno["32"] == 31
    assert {r["locarno_class"] for r in manifest.values()} <= set(locarno)

    assert steps_per_epoch(total, 5) == -(-total // 5) and steps_per_epoch(32, 8) == 4
    with warnings.catch_warnings():  # torch warns that 4 workers exceed this machine's cores; nothing starts here
        warnings.simplefilter("ignore", UserWarning)
        assert make_loader(make(), 16).num_workers == len(shards)  # never a worker without a shard

    with pytest.raises(FileNotFoundError, match="designclip release"):
        split_shards(str(tmp_path), "train")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "sizes.json").write_text("{}")
    with pytest.raises(ValueError, match="no samples"):
        split_shards(str(tmp_path), "train")


def test_every_sample_once_per_epoch_with_matching_labels(root: Path, make: Any, eval_tf: Transform,
                                                         tokenizer: Any, manifest: dict[str, dict[str, Any]]) -> None:
    total = len(manifest)
    batch = 5  # does not divide the split: the stream runs on into the next epoch
    batches = take(make(batch_size=batch, views_per_patent=0, transform=eval_tf), steps_per_epoch(2 * total, batch))
    keys = flat_keys(batches)
    first, second = keys[:total], keys[total:2 * total]
    assert Counter(first) == Counter(manifest.keys()) == Counter(second)  # each exactly once
    assert first != second  # each epoch has its own order

    patents, locarno = patent_index(str(root)), locarno_index(str(root))
    captions = {k: m["txt"].decode() for s in split_shards(str(root), "train")[0] for k, m in read_samples(Path(s))}
    for b in batches:
        assert b.size == batch and tuple(b.images.shape) == (batch, 3, 64, 64) and b.images.dtype == torch.float32
        assert tuple(b.texts.shape) == (batch, 77) and b.texts.dtype == torch.long
        for t in (b.cls, b.locarno, b.patent):
            assert tuple(t.shape) == (batch,) and t.dtype == torch.long
        rows = [manifest[k] for k in b.keys]
        assert b.cls.tolist() == [r["cls"] for r in rows]
        assert b.patent.tolist() == [patents[r["patent_id"]] for r in rows]
        assert b.locarno.tolist() == [locarno[r["locarno_class"]] for r in rows]
        assert torch.equal(b.texts, tokenizer([captions[k] for k in b.keys]))
    moved = batches[0].to("cpu")
    assert torch.equal(moved.images, batches[0].images) and moved.keys == batches[0].keys


def test_views_of_a_patent_stay_together(make: Any, manifest: dict[str, dict[str, Any]]) -> None:
    views = Counter(patent_of(k) for k in manifest)
    per_epoch = sum(min(2, n) for n in views.values())
    batches = take(make(batch_size=6, views_per_patent=2), steps_per_epoch(3 * per_epoch, 6))
    keys = flat_keys(batches)
    chosen = []
    for e in range(3):
        epoch = keys[e * per_epoch:(e + 1) * per_epoch]
        runs = [(p, len(list(g))) for p, g in itertools.groupby(epoch, key=patent_of)]
        assert dict(runs) == {p: min(2, n) for p, n in views.items()} and len(runs) == len(views)  # adjacent views
        chosen.append(sorted(epoch))
    assert len({tuple(c) for c in chosen}) > 1  # the seeded generator picks other views in other epochs
    paired = [b for b in batches if max(Counter(map(patent_of, b.keys)).values()) >= 2]
    assert len(paired) >= 0.8 * len(batches)
    assert all(b.size == 6 for b in batches)


def test_seed_fixes_order_and_augmentation(make: Any) -> None:
    a, b = take(make(seed=7), 6), take(make(seed=7), 6)
    assert flat_keys(a) == flat_keys(b)
    assert all(torch.equal(x.images, y.images) and torch.equal(x.texts, y.texts) for x, y in zip(a, b, strict=True))
    assert flat_keys(take(make(seed=8), 6)) != flat_keys(a)


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_batches_resumes_the_same_stream(make: Any, workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    k, more = 5, 5
    full = take(make(views_per_patent=2), k + more, workers)
    decoded = Counter[str]()
    real_decode = td.decode_image

    def counting(png: bytes) -> Image.Image:
        decoded["images"] += 1
        return real_decode(png)

    monkeypatch.setattr(td, "decode_image", counting)
    resumed = take(make(views_per_patent=2, skip_batches=k), more, workers)
    assert [b.keys for b in resumed] == [b.keys for b in full[k:]]
    assert all(torch.equal(x.images, y.images) for x, y in zip(resumed, full[k:], strict=True))  # same augmentation
    if workers == 0:  # in-process: the skipped batches were never decoded
        assert decoded["images"] == more * 4


def _damaged(png: bytes, how: str) -> bytes:
    """`truncate`: cut mid-file; `deflate`: flip IDAT bytes and fix the CRC, so only decoding can tell."""
    if how == "truncate":
        return png[: len(png) // 2]
    out, pos = bytearray(png[:8]), 8
    while pos < len(png):
        (n,), kind = struct.unpack(">I", png[pos:pos + 4]), png[pos + 4:pos + 8]
        data = bytearray(png[pos + 8:pos + 8 + n])
        if kind == b"IDAT":
            data[n // 2:n // 2 + 64] = bytes(x ^ 0xFF for x in data[n // 2:n // 2 + 64])
        out += struct.pack(">I", n) + kind + data + struct.pack(">I", zlib.crc32(kind + bytes(data)))
        pos += 12 + n
    return bytes(out)


def _copy_with_damage(src: Path, dst: Path, damage: dict[str, str]) -> None:
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for info in tin:
            data = tin.extractfile(info).read()  # type: ignore[union-attr]
            key, ext = info.name.split(".", 1)
            if ext == "png" and key in damage:
                data = _damaged(data, damage[key])
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))


def test_bad_pngs_are_skipped_counted_and_resume_consistently(root: Path, make: Any, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    src = Path(split_shards(str(root), "train")[0][0])
    keys = [k for k, _ in read_samples(src)]
    truncated, broken = keys[1], keys[-2]
    shard = tmp_path / "00000.tar"
    _copy_with_damage(src, shard, {truncated: "truncate", broken: "deflate"})
    assert not td.png_looks_whole(dict(read_samples(shard))[truncated]["png"])
    assert td.png_looks_whole(dict(read_samples(shard))[broken]["png"])  # only decoding finds this one

    ds = make(shards=[str(shard)], batch_size=3, views_per_patent=0)
    with caplog.at_level(logging.WARNING, logger="designclip.pipeline.train.data"):
        epoch = take(ds, (len(keys) - 1) // 3)  # one epoch: the truncated sample never enters a batch
    assert sorted(flat_keys(epoch)) == sorted(set(keys) - {truncated, broken})
    assert sorted(b.size for b in epoch) == [2] + [3] * (len(epoch) - 1)  # the batch that held `broken`
    assert all(b.images.shape[0] == b.texts.shape[0] == b.patent.shape[0] == b.size for b in epoch)
    assert ds.skipped_samples == 2
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert truncated in warned and broken in warned

    resumed = take(make(shards=[str(shard)], batch_size=3, views_per_patent=0, skip_batches=1), len(epoch) - 1)
    assert [b.keys for b in resumed] == [b.keys for b in epoch[1:]]


def test_image_rows_are_the_gray_drawing_in_three_channels(root: Path, make: Any, eval_tf: Transform) -> None:
    pngs = {k: m["png"] for s in split_shards(str(root), "train")[0] for k, m in read_samples(Path(s))}
    raw = take(make(transform=PILToTensor(), batch_size=3), 2)
    for b in raw:
        assert b.images.dtype == torch.uint8
        for key, img in zip(b.keys, b.images, strict=True):
            gray = Image.open(io.BytesIO(pngs[key]))
            assert gray.mode == "L"
            assert all(torch.equal(img[c], PILToTensor()(gray)[0]) for c in range(3))
    normalised = take(make(transform=eval_tf, batch_size=3), 1)[0]
    for key, img in zip(normalised.keys, normalised.images, strict=True):
        assert torch.equal(img, eval_tf(Image.open(io.BytesIO(pngs[key])).convert("RGB")))
