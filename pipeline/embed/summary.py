"""The embed stage's summary: one row per shard (done / skipped (done) / failed) and the totals over them."""

from __future__ import annotations

from collections import Counter
from typing import Any

from designclip.pipeline.common.stage import UnitResult
from designclip.pipeline.embed.encoder import ClipEncoder
from designclip.storage.embeddings import ReleaseShard


def shard_row(shard: ReleaseShard, result: UnitResult | None, error: str | None = None) -> dict[str, Any]:
    """One line of the stage summary (status done / skipped (done) / failed)."""
    if result is None:
        return {"shard": shard.name, "status": "failed", "samples": shard.samples, "error": error}
    stats = result.stats
    return {"shard": shard.name, "status": "skipped (done)" if result.skipped else "done",
            "samples": stats.get("samples", 0), "image_ok": stats.get("image_ok", 0),
            "failures": sum(len(v) for v in stats.get("failures", {}).values()),
            "failures_by_reason": {k: len(v) for k, v in stats.get("failures", {}).items()},
            "failed_keys": stats.get("failures", {}), "seconds": stats.get("seconds"),
            "samples_per_s": stats.get("samples_per_s"), "dtype": stats.get("dtype"), "dim": stats.get("dim")}


def summarize(release: str, encoder: ClipEncoder, rows: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Totals over the shards (samples of skipped shards included; seconds and rate of this run only)."""
    ok = [r for r in rows if r["status"] != "failed"]
    ran = [r for r in ok if r["status"] == "done"]
    reasons: Counter[str] = Counter()
    keys: dict[str, list[str]] = {}
    for r in ok:
        reasons.update(r["failures_by_reason"])
        for reason, ks in r["failed_keys"].items():
            keys.setdefault(reason, []).extend(ks)
    embedded = sum(r["samples"] for r in ran)
    seconds = sum(r["seconds"] or 0.0 for r in ran)
    return {
        "model_tag": encoder.tag, "release": release, "model": encoder.info.get("spec"),
        "init": encoder.info.get("init"), "weights_sha256": encoder.info.get("weights_sha256"),
        "shards": len(rows), "skipped": sum(1 for r in ok if r["status"] == "skipped (done)"),
        "embedded_shards": len(ran), "failed_shards": [r["shard"] for r in rows if r["status"] == "failed"],
        "samples": sum(r["samples"] for r in ok), "embedded_samples": embedded,
        "image_ok": sum(r["image_ok"] for r in ok), "failures": sum(reasons.values()),
        "failures_by_reason": dict(reasons), "failed_keys": keys, "dim": encoder.dim,
        "dtypes": sorted({r["dtype"] for r in ok if r.get("dtype")}), "seconds": round(seconds, 3),
        "samples_per_s": round(embedded / seconds, 2) if seconds > 0 else None, "wall_s": round(wall_s, 3),
        "device": encoder.device, "precision": encoder.precision, "rows": rows,
    }
