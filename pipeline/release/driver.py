"""The release stage's driver: one unit, the release version, built from frozen `ReleaseOptions` (Prefect-free)."""

from __future__ import annotations

import logging
from typing import Any

from designclip.pipeline.common.stage import Logger, Progress, Scope, UnitResult, no_progress
from designclip.pipeline.release.build import build, is_finished
from designclip.pipeline.release.inputs import release_sources
from designclip.pipeline.release.options import ReleaseError, ReleaseOptions, release_options
from designclip.pipeline.release.shards import OnShard
from designclip.storage import layout
from designclip.storage.folder import DataFolder

_LOG = logging.getLogger("designclip.release")


class ReleaseDriver:
    """Finished render weeks (and a caption set) -> `releases/{version}/`, immutable; the marker is written last."""

    name = "release"

    def units(self, folder: DataFolder, scope: Scope, options: ReleaseOptions) -> list[str]:
        return [scope.release]

    def is_done(self, folder: DataFolder, unit: str, options: ReleaseOptions) -> bool:
        """Finished from the same inputs and settings (inputs that cannot make this release: not done)."""
        try:
            return is_finished(folder, release_sources(folder, unit, options))
        except ReleaseError:
            return False

    def run(self, folder: DataFolder, unit: str, options: ReleaseOptions, progress: Progress = no_progress, *,
            log: Logger | None = None, on_shard: OnShard | None = None) -> UnitResult:
        """Build the release (samples read as `progress`); stats are the marker plus status, skipped and path."""
        stats = build(folder, unit, options, log or _LOG, progress, on_shard)
        return UnitResult(self.name, unit, stats["skipped"], stats, stats["path"])

    def outputs(self, folder: DataFolder, scope: Scope, options: ReleaseOptions) -> str:
        return folder.path(layout.release_dir(scope.release))


RELEASE = ReleaseDriver()


def build_release(version: str, data_root: str, profile: str = ReleaseOptions.profile, *,
                  logger: Logger | None = None, on_shard: OnShard | None = None, **options: Any) -> dict[str, Any]:
    """The release as a library call (tests, benchmarks): loose options as `release_options` takes them."""
    built = release_options(profile=profile, **options)
    return dict(RELEASE.run(DataFolder(data_root), version, built, log=logger, on_shard=on_shard).stats)
