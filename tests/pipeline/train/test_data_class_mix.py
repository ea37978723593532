"""Training batches mix US classes like a full shuffle, although USPTO numbers a week's designs in class runs."""

from __future__ import annotations

import datetime as dt
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import designclip.pipeline.release.shards as release_shards
import pytest
from designclip.pipeline.release.driver import build_release
from designclip.pipeline.train.data import PatentBatches, patent_index, split_shards

from tests.fixtures.release import RENDERED, clone_week, copy_data, release_root

COPIES = 5  # each real week cloned into 5 consecutive weeks: runs of 5-10 same-class patents, as USPTO numbers them
FIRST = dt.date(2022, 1, 4)
BATCH, VIEWS, BUFFER = 8, 2, 4  # 4 patents a batch; the buffer holds a sliver of the split, as 256 of ~300k does
SHARD_SAMPLES = 120  # ~25 patents a shard: a shard spans several class runs, as a real 1000-sample shard does
SEEDS, BATCHES = range(8), 30


def _renumbered(copy: int, grant: dt.date) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """USD0917866 -> USD{copy}917866 granted on the clone's week: a new patent with the same drawings and class."""

    def edit(meta: dict[str, Any]) -> dict[str, Any]:
        old = meta["patent_id"]
        new = f"{old[:3]}{copy}{old[4:]}"
        return meta | {"patent_id": new, "key": meta["key"].replace(old, new, 1), "grant_date": grant.isoformat()}

    return edit


@pytest.fixture(scope="module")
def clustered(release_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 12 real rendered patents, each cloned 5 times into consecutive 2022 weeks (60 patents in class runs)."""
    data = copy_data(release_data, tmp_path_factory.mktemp("class-runs") / "data")
    week = FIRST
    for src in RENDERED:
        for copy in range(1, COPIES + 1):
            clone_week(data, src, week, edit=_renumbered(copy, week))
            week += dt.timedelta(days=7)
    return data


def _release(data: Path, version: str) -> Path:
    build_release(version, str(data), years=[2022], ratios="100/0/0", shard_samples=SHARD_SAMPLES)
    return release_root(data, version)


def _classes_per_batch(root: Path) -> float:
    """Mean distinct US classes in a training batch of the loader (raw stream, several seeds)."""
    shards, _ = split_shards(str(root), "train")
    counts = []
    for seed in SEEDS:
        ds = PatentBatches(shards, BATCH, transform=lambda im: im, tokenize=lambda t: t,
                           patents=patent_index(str(root)), views_per_patent=VIEWS, shuffle_patents=BUFFER, seed=seed)
        stream = ds.raw_batches()
        counts += [len({s.cls for s in next(stream)}) for _ in range(BATCHES)]
    return statistics.mean(counts)


def _full_shuffle(root: Path) -> float:
    """The same batches cut from a uniform permutation of the split's patents: what perfect mixing gives."""
    shards, _ = split_shards(str(root), "train")
    ds = PatentBatches(shards, BATCH, transform=lambda im: im, tokenize=lambda t: t, patents={}, shuffle_patents=1)
    patents = [[s.cls for s in group][:VIEWS] for group in ds._patent_groups(ds._raw_samples(shards))]
    counts = []
    for seed in range(200):
        order = random.Random(seed).sample(patents, len(patents))
        stream = [c for views in order for c in views]
        counts += [len(set(stream[i:i + BATCH])) for i in range(0, len(stream) - BATCH + 1, BATCH)]
    return statistics.mean(counts)


def test_batches_mix_classes_like_a_full_shuffle(clustered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = _release(clustered, "hashed")
    full = _full_shuffle(hashed)
    assert full > 2.5  # 60 patents of 6 classes: a random batch of 4 patents holds about 3 classes
    mixed = _classes_per_batch(hashed)
    monkeypatch.setattr(release_shards, "release_order", lambda patent_id: 0)  # ties keep the input order
    in_input_order = _classes_per_batch(_release(clustered, "input-order"))
    print(f"distinct classes per batch: full shuffle {full:.2f}, hash order {mixed:.2f}, "
          f"input order {in_input_order:.2f}")
    assert in_input_order < 0.75 * full  # the defect this guards against: the class runs reach the batches
    assert mixed >= 0.9 * full
