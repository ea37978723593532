"""The INDEX driver without Prefect: units per kind, one index built, the second run kept, other settings redone."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from designclip.pipeline.common.stage import Scope
from designclip.pipeline.index.driver import INDEX, IndexOptions, IndexUnit
from designclip.storage.folder import DataFolder

from tests.index.test_task import _write_synthetic


def test_an_index_is_built_once_and_kept(tmp_path: Path) -> None:
    folder = DataFolder(_write_synthetic(tmp_path / "data")["root"])
    options = IndexOptions(splits=("train", "test"), flat_max=1000)
    scope = Scope(dt.date(2021, 1, 1), dt.date(2021, 12, 31), release="vs", run="syn", size_profile="px512")
    assert INDEX.units(folder, scope, options) == [IndexUnit("vs", "syn", "image"), IndexUnit("vs", "syn", "text")]
    unit = IndexUnit("vs", "syn", "text")
    assert not INDEX.is_done(folder, unit, options)
    calls: list[tuple[int, int | None]] = []
    first = INDEX.run(folder, unit, options, lambda done, total=None: calls.append((done, total)))
    assert not first.skipped and first.stage == "index" and first.unit == "syn/text" and calls == [(0, 1), (1, 1)]
    assert first.stats["kind"] == "hnsw" and first.stats["settings"] == options.settings("text")
    assert Path(first.where, "index.faiss").is_file() and INDEX.is_done(folder, unit, options)
    again = INDEX.run(folder, unit, options)
    assert again.skipped and again.stats["created_at"] == first.stats["created_at"]
    other = dataclasses.replace(options, target_recall=0.9)
    assert not INDEX.is_done(folder, unit, other) and not INDEX.run(folder, unit, other).skipped
