"""The EMBED driver without Prefect: units of a scope, one shard run with progress, the second run skipped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from designclip.pipeline.common.stage import Scope
from designclip.pipeline.embed.driver import EMBED, EmbedOptions, EmbedUnit, prepare_release
from designclip.pipeline.embed.encoder import EncoderSpec
from designclip.storage import layout
from designclip.storage.folder import DataFolder

from tests.fixtures.embed import copy_release


def test_one_shard_runs_then_is_skipped(release_data: Path, release_v1: dict, tiny_export: Path,
                                        tmp_path: Path) -> None:
    folder = DataFolder(copy_release(release_data, tmp_path / "data"))
    options = EmbedOptions(EncoderSpec(str(tiny_export)), splits=("test",), batch_size=4)
    scope = Scope(dt.date(2021, 1, 1), dt.date(2021, 12, 31), release="v1", run="", size_profile="px512")
    units = EMBED.units(folder, scope, options)
    assert [str(u) for u in units] == [s.name for s in prepare_release(folder, "v1", options.encoder(folder.url),
                                                                       ("test",))]
    unit = units[0]
    assert isinstance(unit, EmbedUnit) and not EMBED.is_done(folder, unit, options)
    calls: list[tuple[int, int | None]] = []
    first = EMBED.run(folder, unit, options, lambda done, total=None: calls.append((done, total)))
    assert not first.skipped and first.stage == "embed" and first.unit == unit.shard.name
    assert first.stats["samples"] == unit.shard.samples and first.stats["encoder"] == options.model_tag
    assert calls[-1] == (unit.shard.samples, unit.shard.samples)
    assert first.where == folder.path(layout.embed_dir("v1", options.model_tag))
    assert EMBED.is_done(folder, unit, options)
    again = EMBED.run(folder, unit, options)
    assert again.skipped and again.stats == first.stats
    assert EMBED.outputs(folder, scope, options) == first.where
