"""A week's views and captions are forgotten together, markers first, every render profile and caption set."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.week_outputs import forget_week_downstream

WEEK, OTHER = dt.date(2021, 1, 5), dt.date(2021, 1, 12)


def _touch(root: Path, rel: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text("x")


def test_every_profile_and_caption_set_of_the_week_goes_and_nothing_else(tmp_path: Path) -> None:
    for profile in ("px512", "px128"):
        for week in (WEEK, OTHER):
            _touch(tmp_path, layout.shard_tar(profile, week, 0))
            _touch(tmp_path, layout.shard_stats(profile, week, 0))
            _touch(tmp_path, layout.stats_marker(layout.render_stage(profile), week))
            _touch(tmp_path, layout.preview_file(profile, week))
            for cset in ("metadata-1", "llava-abc"):
                _touch(tmp_path, layout.caption_stats(profile, cset, week, 0))
    removed = forget_week_downstream(DataFolder(tmp_path), WEEK)
    assert len(removed) == 2 * (3 + 2)  # per profile: marker, shard folder, preview, 2 caption folders
    left = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert left and all("I20210112" in rel for rel in left)
    assert forget_week_downstream(DataFolder(tmp_path), WEEK) == []
