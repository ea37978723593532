"""The caption stage's driver: rendered shards -> one caption Parquet each (Prefect-free)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from designclip.pipeline.caption.captioner import CaptionResult
from designclip.pipeline.caption.loaded import load_captioner, prepare_set, unload_captioners
from designclip.pipeline.caption.options import CaptionerSpec, add_spec_arguments, spec_from_args, worker_argv
from designclip.pipeline.caption.shard import caption_shard_file
from designclip.pipeline.common.stage import Progress, Scope, UnitResult, no_progress
from designclip.storage import layout
from designclip.storage.captions import ShardRef, rendered_shards
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker

__all__ = ["CAPTION", "CaptionDriver", "CaptionerSpec", "add_spec_arguments", "caption_shard_file", "load_captioner",
           "prepare_set", "spec_from_args", "unload_captioners", "worker_argv"]


class CaptionDriver:
    """Captions every view of the rendered shards of a scope's weeks into the caption set the spec's model makes."""

    name = "caption"

    def units(self, folder: DataFolder, scope: Scope, spec: CaptionerSpec) -> list[ShardRef]:
        return rendered_shards(folder, spec.profile, scope.start, scope.end)

    def caption_set(self, folder: DataFolder, spec: CaptionerSpec) -> str:
        """The set id of the spec's captioner (loaded once per process); its captioner.json written or checked."""
        return prepare_set(folder, spec.profile, load_captioner(spec))

    def is_done(self, folder: DataFolder, unit: ShardRef, spec: CaptionerSpec) -> bool:
        caption_set = self.caption_set(folder, spec)
        return DoneMarker(folder, layout.caption_stats(spec.profile, caption_set, unit.week, unit.number)).done() \
            is not None

    def run(self, folder: DataFolder, unit: ShardRef, spec: CaptionerSpec, progress: Progress = no_progress, *,
            log: logging.Logger | logging.LoggerAdapter | None = None,
            on_result: Callable[[CaptionResult], None] | None = None) -> UnitResult:
        """Caption one shard (views captioned as `progress`); a finished one is skipped, a broken one resumes."""
        caption_set = self.caption_set(folder, spec)
        stats = caption_shard_file(folder, spec.profile, unit, load_captioner(spec), caption_set, logger=log,
                                   on_result=on_result, progress=progress)
        skipped = stats.pop("skipped")
        return UnitResult(self.name, unit.name, skipped, stats,
                          folder.path(layout.caption_file(spec.profile, caption_set, unit.week, unit.number)))

    def outputs(self, folder: DataFolder, scope: Scope, spec: CaptionerSpec) -> str:
        return folder.path(layout.caption_set_dir(spec.profile, self.caption_set(folder, spec)))


CAPTION = CaptionDriver()
