"""The caption flow: rendered shards -> one caption Parquet per shard, in one process or across GPUs."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from typing import Any

from designclip.pipeline.caption.captioner import default_backend
from designclip.pipeline.caption.driver import CAPTION, CaptionerSpec, unload_captioners, worker_argv
from designclip.pipeline.common.stage import Scope, UnitResult
from designclip.storage import layout
from designclip.storage.captions import shard_captions_done
from designclip.storage.folder import DataFolder
from designclip.tasks.caption import caption_shard
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact


class CaptionFailed(RuntimeError):
    """Some shards failed; finished shards and checkpoints are kept and the next run resumes them."""


def caption_summary(caption_set: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if r["status"] != "failed"]
    return {
        "caption_set": caption_set,
        "shards": len(rows),
        "skipped": sum(1 for r in rows if r["status"] == "skipped (done)"),
        "failed_shards": [r["shard"] for r in rows if r["status"] == "failed"],
        "samples": sum(r.get("samples", 0) for r in done),
        "captioned": sum(r.get("captioned", 0) for r in done),
        "failures": sum(r.get("failures", 0) for r in done),
        "failures_by_reason": dict(sum((Counter(r.get("failures_by_reason", {})) for r in done), Counter())),
        "rows": rows,
    }


def _stats(result: UnitResult) -> dict[str, Any]:
    """A shard's row as the summary and the CLI read it: the marker's stats and whether it was already done."""
    return {**result.stats, "skipped": result.skipped}


def caption_markdown(summary: dict[str, Any]) -> str:
    lines = [f"Caption set `{summary['caption_set']}`: {summary['captioned']} of {summary['samples']} views "
             f"captioned, {summary['failures']} failures", "",
             "| shard | status | views | captioned | failures | s | views/s |", "|---|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        secs = r.get("duration_s")
        rate = f"{r['samples'] / secs:.2f}" if secs and r.get("samples") and r["status"] == "done" else ""
        lines.append(f"| {r['shard']} | {r['status']} | {r.get('samples', '')} | {r.get('captioned', '')} | "
                     f"{r.get('failures', '')} | {secs if secs is not None else ''} | {rate} |")
    return "\n".join(lines)


def _launch_processes(processes: int, argv: list[str]) -> None:
    """Several GPUs: `accelerate launch`, each process captioning whole shards (designclip.cli.caption_worker)."""
    import torch

    gpus = torch.cuda.device_count()
    if gpus < processes:
        raise CaptionFailed(f"--processes {processes} needs {processes} CUDA GPUs, this machine has {gpus}: "
                            "use --processes 1 "
                            "(or `torchrun --nproc_per_node N -m designclip.cli.caption_worker` on CPU)")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "designclip.cli.caption_worker", *argv]
    completed = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False)
    if completed.returncode != 0:
        raise CaptionFailed(f"caption workers exited with {completed.returncode}; rerun to resume the unfinished "
                            "shards")


@flow(name="caption", log_prints=True)
def caption_flow(
    start: dt.date,
    end: dt.date,
    data_root: str = layout.DEFAULT_DATA_ROOT,
    profile: str = layout.DEFAULT_PROFILE,
    captioner: str | None = None,
    model: str | None = None,
    batch_size: int | None = None,
    max_new_tokens: int = 77,
    loader_workers: int = 2,
    processes: int = 1,
) -> dict[str, Any]:
    """Caption every view of the rendered weeks in [start, end]; finished shards are skipped, others resume."""
    log = get_run_logger()
    backend = captioner or default_backend()
    folder = DataFolder(data_root)
    spec = CaptionerSpec(backend, model, batch_size, max_new_tokens, loader_workers=loader_workers, profile=profile)
    shards = CAPTION.units(folder, Scope(start, end, release="", run="", size_profile=profile), spec)
    if not shards:
        raise CaptionFailed(f"no rendered weeks between {start} and {end} under {data_root} ({profile}): "
                            f"run `designclip render --start {start} --end {end}` first")
    log.info("captioning %d shards with %s%s", len(shards), backend, f" ({model})" if model else "")
    caption_set = CAPTION.caption_set(folder, spec)
    log.info("caption set %s", caption_set)
    done_before = {r.name for r in shards if shard_captions_done(folder, profile, caption_set, r) is not None}
    if processes > 1:
        unload_captioners()
        _launch_processes(processes, worker_argv(spec, data_root, start, end))
    rows = []
    try:
        for ref in shards:
            row: dict[str, Any] = {"shard": ref.name}
            finished = shard_captions_done(folder, profile, caption_set, ref) if processes > 1 else None
            state = None if finished else caption_shard(data_root, ref, spec, return_state=True)
            if finished or state.is_completed():
                row |= finished or _stats(state.result())
                row["status"] = "skipped (done)" if ref.name in done_before else "done"
            else:
                row["status"] = "failed"
                row["error"] = str(state.result(raise_on_failure=False))
            rows.append(row)
    finally:
        unload_captioners()
    summary = caption_summary(caption_set, rows)
    create_markdown_artifact(caption_markdown(summary), key="caption-summary", description="Captions by shard")
    if summary["failed_shards"]:
        errors = "\n".join(f"{r['shard']}: {r['error']}" for r in rows if r["status"] == "failed")
        raise CaptionFailed(f"{len(summary['failed_shards'])} of {len(rows)} shards failed (rerun to resume):\n"
                            + errors)
    return summary

