"""The embed flow: a release -> image and text vectors per release shard, by one model, resumable."""

from __future__ import annotations

import time
from typing import Any

from designclip.pipeline.embed.driver import EmbedOptions, prepare_release
from designclip.pipeline.embed.encoder import EncoderSpec
from designclip.pipeline.embed.encoder_cache import unload_encoders
from designclip.pipeline.embed.summary import shard_row, summarize
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.tasks.embed import embed_shard
from designclip.tasks.progress import CountProgress, artifact_key
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact


class EmbedFailed(RuntimeError):
    """Some shards failed; finished shards are kept and the next run embeds only the rest."""


def embed_markdown(summary: dict[str, Any]) -> str:
    """The stage summary as Markdown: totals, failures by reason, one line per shard."""
    rate = summary["samples_per_s"]
    lines = [f"Release `{summary['release']}` embedded by `{summary['model_tag']}` ({summary['init']}, "
             f"{summary['dim']}-d, {', '.join(summary['dtypes']) or '-'} on disk, {summary['device']} "
             f"{summary['precision']}): {summary['samples']} views in {summary['shards']} shards, "
             f"{summary['skipped']} shards already done, {summary['failures']} problems"
             + (f", {rate} views/s" if rate else ""), ""]
    if summary["failures_by_reason"]:
        lines += ["| problem | views | first keys |", "|---|---|---|"]
        for reason, n in sorted(summary["failures_by_reason"].items()):
            keys = summary["failed_keys"].get(reason, [])
            lines.append(f"| {reason} | {n} | {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''} |")
        lines.append("")
    lines += ["| shard | status | views | image ok | problems | s | views/s |", "|---|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        lines.append(f"| {r['shard']} | {r['status']} | {r.get('samples', '')} | {r.get('image_ok', '')} | "
                     f"{r.get('failures', '')} | {r.get('seconds') or ''} | {r.get('samples_per_s') or ''} |")
    return "\n".join(lines)


@flow(name="embed", log_prints=True)
def embed_flow(
    release: str,
    model: str,
    pretrained: str | None = None,
    data_root: str = layout.DEFAULT_DATA_ROOT,
    splits: tuple[str, ...] = ("train", "val", "test"),
    batch_size: int = 64,
    fp16: bool = False,
    device: str | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    """Embed every view and caption of the release's splits with one model; done shards are skipped."""
    log = get_run_logger()
    started = time.perf_counter()
    options = EmbedOptions(EncoderSpec(model, pretrained), tuple(splits), batch_size, fp16, device, tag=tag)
    splits = options.splits
    encoder = options.encoder(data_root)
    shards = prepare_release(DataFolder(data_root), release, encoder, splits)
    log.info("embedding %d shards of release %s (%s) with %s (%s) on %s", len(shards), release, ",".join(splits),
             encoder.tag, encoder.info.get("init"), encoder.device)
    progress = CountProgress(f"embed {release} {encoder.tag}", len(shards), log, unit="shards", every_s=0.0)
    rows = []
    try:
        for i, shard in enumerate(shards, start=1):
            state = embed_shard(data_root, release, shard.split, shard.number, options, return_state=True)
            if state.is_completed():
                rows.append(shard_row(shard, state.result()))
            else:
                rows.append(shard_row(shard, None, str(state.result(raise_on_failure=False))))
            progress(i)
    finally:
        unload_encoders()
    summary = summarize(release, encoder, rows, time.perf_counter() - started)
    create_markdown_artifact(embed_markdown(summary), key=artifact_key("embed", release, encoder.tag),
                             description=f"Embeddings of release {release} by {encoder.tag}")
    if summary["failed_shards"]:
        errors = "\n".join(f"{r['shard']}: {r['error']}" for r in rows if r["status"] == "failed")
        raise EmbedFailed(f"{len(summary['failed_shards'])} of {len(rows)} shards failed (rerun to embed only "
                          f"those):\n{errors}")
    return summary
