"""The release stage's driver without Prefect: one unit (the version), built once from frozen options, then skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from designclip.pipeline.common.stage import Scope, StageDriver
from designclip.pipeline.release.driver import RELEASE
from designclip.pipeline.release.options import ReleaseExists, release_options
from designclip.storage import layout
from designclip.storage.folder import DataFolder

from tests.fixtures.release import RATIOS, RENDERED, SHARD_SAMPLES, copy_data

SCOPE = Scope(RENDERED[0], RENDERED[-1], release="v-driver", run="", size_profile="px512")


def test_release_driver_builds_once_then_skips(release_data: Path, tmp_path: Path) -> None:
    folder = DataFolder(copy_data(release_data, tmp_path / "data"))
    options = release_options(ratios=RATIOS, shard_samples=SHARD_SAMPLES)
    driver: StageDriver = RELEASE
    assert driver.units(folder, SCOPE, options) == ["v-driver"]
    assert not driver.is_done(folder, "v-driver", options)
    seen: list[tuple[int, int | None]] = []
    first = driver.run(folder, "v-driver", options, lambda done, total=None: seen.append((done, total)))
    assert first.computed and first.stage == "release" and first.unit == "v-driver"
    assert first.stats["status"] == "done" and first.where == driver.outputs(folder, SCOPE, options)
    assert first.where == folder.path(layout.release_dir("v-driver"))
    total = first.stats["input_samples"]
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert driver.is_done(folder, "v-driver", options)
    sums = (Path(first.where) / "SHA256SUMS").read_bytes()
    second = driver.run(folder, "v-driver", options)
    assert second.skipped and second.stats["status"] == "skipped"
    assert second.stats["sha256sums"] == first.stats["sha256sums"]
    assert (Path(first.where) / "SHA256SUMS").read_bytes() == sums
    other = release_options(ratios=RATIOS, shard_samples=SHARD_SAMPLES + 1)
    assert not driver.is_done(folder, "v-driver", other)
    with pytest.raises(ReleaseExists, match="shard_samples"):
        driver.run(folder, "v-driver", other)
