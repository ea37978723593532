"""The caption stage's driver without Prefect: units of a scope, computed once, skipped after; options declared once."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from designclip.pipeline.caption.driver import (
    CAPTION,
    CaptionerSpec,
    add_spec_arguments,
    spec_from_args,
    unload_captioners,
    worker_argv,
)
from designclip.pipeline.common.stage import Scope, StageDriver
from designclip.storage import layout
from designclip.storage.folder import DataFolder

from tests.fixtures.release import RENDERED, copy_data

SCOPE = Scope(RENDERED[0], RENDERED[1], release="", run="", size_profile="px512")


def test_caption_driver_computes_each_shard_once(release_data: Path, tmp_path: Path) -> None:
    folder = DataFolder(copy_data(release_data, tmp_path / "data"))
    spec = CaptionerSpec("metadata")
    driver: StageDriver = CAPTION
    try:
        units = driver.units(folder, SCOPE, spec)
        assert [u.week for u in units] == RENDERED[:2]
        assert not any(driver.is_done(folder, u, spec) for u in units)
        first = [driver.run(folder, u, spec) for u in units]
        assert all(r.computed and r.stage == "caption" for r in first)
        assert [r.unit for r in first] == [u.name for u in units]
        assert all(Path(r.where).is_file() for r in first)
        assert all(driver.is_done(folder, u, spec) for u in units)
        seen: list[tuple[int, int | None]] = []
        second = [driver.run(folder, u, spec, lambda done, total=None: seen.append((done, total))) for u in units]
        assert all(r.skipped for r in second) and not seen
        assert [dict(r.stats) for r in second] == [dict(r.stats) for r in first]
        caption_set = CAPTION.caption_set(folder, spec)
        assert driver.outputs(folder, SCOPE, spec) == folder.path(layout.caption_set_dir("px512", caption_set))
    finally:
        unload_captioners()


def test_caption_driver_reports_progress_in_views(release_data: Path, tmp_path: Path) -> None:
    folder = DataFolder(copy_data(release_data, tmp_path / "data"))
    spec = CaptionerSpec("metadata")
    seen: list[tuple[int, int | None]] = []
    try:
        ref = CAPTION.units(folder, SCOPE, spec)[0]
        result = CAPTION.run(folder, ref, spec, lambda done, total=None: seen.append((done, total)))
    finally:
        unload_captioners()
    samples = result.stats["samples"]
    assert seen[0] == (0, samples) and seen[-1] == (samples, samples)


def test_worker_argv_parses_back_into_the_same_spec() -> None:
    spec = CaptionerSpec("llava", "some/model", 4, 12, min_new_tokens=3, seed=7, loader_workers=0,
                         extra=(("top_p", 0.5),), profile="px256")
    parser = argparse.ArgumentParser()
    for flag in ("--data-root", "--weeks-from", "--weeks-to"):
        parser.add_argument(flag)
    add_spec_arguments(parser)
    argv = worker_argv(spec, "/data", dt.date(2021, 1, 5), dt.date(2021, 1, 12))
    args = parser.parse_args(argv)
    assert (args.data_root, args.weeks_from, args.weeks_to) == ("/data", "2021-01-05", "2021-01-12")
    assert spec_from_args(args) == spec
    assert spec_from_args(args, device="cuda:1").device == "cuda:1"
    assert spec_from_args(parser.parse_args(worker_argv(CaptionerSpec(), "/d", dt.date.min, dt.date.max))) \
        == CaptionerSpec()
