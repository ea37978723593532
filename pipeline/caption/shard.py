"""One rendered shard captioned: checkpointed as it goes, resumed after a crash, its stats marker written last."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from designclip.pipeline.caption.captioner import Captioner, CaptionResult
from designclip.pipeline.caption.loaded import as_folder
from designclip.pipeline.common.contact_sheet import caption_sheet
from designclip.pipeline.common.stage import Progress, no_progress
from designclip.storage import layout
from designclip.storage.captions import ShardCaptionWriter, ShardRef, read_shard_requests, shard_captions_done
from designclip.storage.folder import DataFolder


def _preview_items(requests: dict[str, bytes], rows: list[dict[str, Any]], n: int) -> list[tuple[bytes, str, str]]:
    """Up to `n` views for the preview sheet: failures first (half of it at most), then captioned ones."""
    picked = [r for r in rows if r["error"]][:n // 2]
    picked += [r for r in rows if not r["error"]][: n - len(picked)]
    return [(requests[r["key"]], r["key"], r["caption"] or f"FAILED {r['error']}") for r in picked]


def caption_shard_file(data_root: DataFolder | str, profile: str, ref: ShardRef, captioner: Captioner,
                       caption_set: str, logger: logging.Logger | logging.LoggerAdapter | None = None,
                       checkpoint_rows: int = 256, on_result: Callable[[CaptionResult], None] | None = None,
                       progress: Progress = no_progress) -> dict[str, Any]:
    """Caption one rendered shard; a finished shard is skipped, an unfinished one resumes after its checkpoints."""
    log = logger or logging.getLogger("designclip.caption")
    folder = as_folder(data_root)
    done = shard_captions_done(folder, profile, caption_set, ref)
    if done is not None:
        return {**done, "skipped": True}
    started = time.perf_counter()
    requests = read_shard_requests(folder, profile, ref)
    base = {"backend": captioner.backend, "model_id": captioner.model_id,
            "prompt_version": captioner.prompt_version, "settings": json.dumps(captioner.settings(), sort_keys=True)}
    writer = ShardCaptionWriter(folder, profile, caption_set, ref, [r.key for r in requests], base, checkpoint_rows)
    todo = [r for r in requests if r.key not in writer.done_keys]
    if writer.resumed:
        log.info("%s: resuming, %d of %d captions kept from the last run", ref.name, writer.resumed, len(requests))
    count = writer.resumed
    progress(count, len(requests))
    try:
        for result in captioner.caption(todo):
            writer.add(result)
            count += 1
            progress(count, len(requests))
            if result.error:
                log.warning("%s: %s not captioned: %s", ref.name, result.key, result.error)
            if on_result is not None:
                on_result(result)
    except BaseException:
        writer.checkpoint()  # keep what this run finished; the next run resumes after it
        raise
    if ref.number == 0:  # before the done marker: a kill between the two leaves no preview missing for good
        pngs = {r.key: r.png for r in requests}
        rows = [writer.rows[k] for k in pngs]
        with folder.atomic_open(layout.caption_preview(profile, caption_set, ref.week)) as f:
            f.write(caption_sheet(_preview_items(pngs, rows, 12),
                                  title=f"{caption_set}: {layout.week_id(ref.week)} shard 0"))
    stats = writer.finish(time.perf_counter() - started)
    return {**stats, "skipped": False}
