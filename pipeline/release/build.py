"""One release, start to finish: sources, split plan, shards and manifest, documents and sums, the marker last."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Any

from designclip.pipeline.common.splits import SPLITS
from designclip.pipeline.common.stage import Logger, Progress, no_progress
from designclip.pipeline.ingest.revisions import revised_weeks
from designclip.pipeline.release.card import classes_document, dataset_card
from designclip.pipeline.release.inputs import (
    ReleaseSources,
    log_default_lists,
    plan_splits,
    release_sources,
    same_release,
)
from designclip.pipeline.release.options import (
    NothingToRelease,
    ReleaseError,
    ReleaseExists,
    ReleaseOptions,
    fingerprint_changes,
    split_rule,
)
from designclip.pipeline.release.plan import ReleasePlan, leakage_lines
from designclip.pipeline.release.shards import OnShard, write_shards
from designclip.pipeline.release.tally import Tally
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.release import ManifestWriter, ReleaseFolder, unrendered_weeks


def build(folder: DataFolder, version: str, options: ReleaseOptions, log: Logger, progress: Progress = no_progress,
          on_shard: OnShard | None = None) -> dict[str, Any]:
    """Build `releases/{version}` from the finished render weeks; a finished identical release is skipped."""
    sources = release_sources(folder, version, options)
    log_default_lists(sources, log)
    out = ReleaseFolder(folder, version)
    finished = finished_release(folder, out, sources, log)
    if finished is not None:
        return finished
    options, inputs, year_set = sources.options, sources.inputs, sources.years
    if not inputs:
        where = f" granted in {', '.join(map(str, sorted(year_set)))}" if year_set else ""
        raise NothingToRelease(f"no finished render weeks under profile {options.profile}{where}: "
                               "ingest and render weeks first")
    rule = split_rule(options, (i.week.year for i in inputs))
    if out.exists():
        log.warning("release %s: a half-written release (no %s) is removed and rebuilt", version,
                    layout.release_marker(version))
        out.remove()
    started, clock = dt.datetime.now(dt.UTC), time.perf_counter()
    log.info("release %s: %d weeks, %d samples, split %s", version, len(inputs), sum(i.samples for i in inputs),
             rule.describe())
    plan = plan_splits(folder, sources, rule, log)
    tally = Tally()
    with ManifestWriter(folder, version) as manifest:  # its work folder is inside the release's, never /tmp
        written = write_shards(folder, out, sources, plan, log, on_shard, manifest, tally, progress)
        out.write_manifest(manifest)
    summary = tally.summary(written.shards)
    leakage = _leakage(plan, written.left_out, written.released, version, log)
    not_included = [{"week": w.isoformat(), "reason": "not rendered"}
                    for w in unrendered_weeks(folder, options.profile, year_set)]
    fingerprint = sources.fingerprint
    stats = {"version": version, "settings": fingerprint["settings"], "split_rule": rule.describe(),
             "inputs": fingerprint["inputs"], "input_samples": sum(i.samples for i in inputs),
             "not_included": not_included, "duplicates": written.duplicates, "summary": summary,
             "shards": written.shards, "leakage": leakage, "left_out": written.left_out,
             "revised": revised_weeks(folder, (i.week for i in inputs))}
    marker = {
        "version": version,
        "fingerprint": fingerprint,
        "samples": summary["samples"],
        "patents": summary["patents"],
        "input_samples": stats["input_samples"],
        "duplicates": len(written.duplicates),
        "left_out": leakage["left_out"],
        "excluded_patents": leakage["excluded_patents"],
        "near_duplicates": {k: leakage["near_duplicates"][k] for k in ("groups", "cross_split_pairs")},
        "unknown_cls": summary["unknown_cls"],
        "not_included": not_included,
        "revised": stats["revised"],
        "splits": summary["splits"],
        "sha256sums": _write_documents(out, stats, next((i.size for i in inputs if i.size), 0) or 0),
    }
    out.write_marker(marker)  # no run times in it: the same inputs give the same release files, byte for byte
    timing = {"started_at": started.isoformat(), "finished_at": dt.datetime.now(dt.UTC).isoformat(),
              "duration_s": round(time.perf_counter() - clock, 3)}
    for split in SPLITS:
        c = summary["splits"][split]
        log.info("release %s: %s %d samples of %d patents in %d shards", version, split, c["samples"], c["patents"],
                 c["shards"])
    return {**marker, **timing, "status": "done", "skipped": False, "path": out.url()}


def finished_release(folder: DataFolder, out: ReleaseFolder, sources: ReleaseSources,
                     log: Logger) -> dict[str, Any] | None:
    """The finished release when it matches (a no-op rerun); an error when the version was built differently."""
    marker = out.marker()
    if marker is None:
        return None
    if same_release(folder, marker, sources):
        log.info("release %s: already built from the same inputs and settings, nothing to do", out.version)
        return {**marker, "status": "skipped", "skipped": True, "path": out.url()}
    changes = "; ".join(fingerprint_changes(marker.get("fingerprint") or {}, sources.fingerprint))
    raise ReleaseExists(f"release {out.version!r} already exists ({out.url()}) and was built from other inputs or "
                        f"settings ({changes}). Releases are immutable: pick a new --version.")


def is_finished(folder: DataFolder, sources: ReleaseSources) -> bool:
    """Whether the release is finished and was built from exactly these sources (its marker's fingerprint)."""
    return same_release(folder, ReleaseFolder(folder, sources.version).marker(), sources)


def _write_documents(out: ReleaseFolder, stats: dict[str, Any], size: int) -> str:
    """sizes.json and wids indexes per split, classes.json, stats.json, README.md, then SHA256SUMS (its hash)."""
    shards = stats["shards"]
    for split in SPLITS:
        out.write_split_indexes(split, shards[split])
    out.write_json("classes.json", classes_document())
    out.write_json("stats.json", stats)
    out.write_bytes("README.md", dataset_card(
        stats["version"], stats["summary"], stats["settings"], stats["split_rule"], stats["inputs"],
        stats["not_included"], len(stats["duplicates"]), {s: _brace_urls(shards[s]) for s in SPLITS if shards[s]},
        {s: layout.release_wids_name(s) for s in SPLITS if shards[s]}, size,
        leakage=leakage_lines(stats["leakage"]), revised=stats["revised"]).encode())
    return out.write_sums()


def _brace_urls(shards: list[dict[str, Any]]) -> str:
    """`train/{00000..00012}.tar`, the form open_clip_train and webdataset expand."""
    first, last = shards[0]["name"], shards[-1]["name"]
    folder, a = first.rsplit("/", 1)
    b = last.rsplit("/", 1)[1]
    return f"{folder}/{{{a[:-4]}..{b[:-4]}}}.tar"


def _leakage(plan: ReleasePlan, left_out: list[dict[str, Any]], released: dict[str, str], version: str,
             log: Logger) -> dict[str, Any]:
    """Near-duplicate groups, cross-split pairs (counted on what was written), exclusions, samples left out."""
    cross = plan.near.cross_split_pairs(released)
    if cross:
        raise ReleaseError(f"release {version}: {cross} near-duplicate view pairs straddle two splits; this is a bug "
                           "in the split plan, please report it")
    groups = [{"group": g, "patents": m, "split": released.get(g)} for g, m in sorted(plan.near.members.items())]
    reasons = Counter(x["reason"] for x in left_out)
    if left_out:
        log.info("release %s: %d samples left out (%s)", version, len(left_out),
                 "; ".join(f"{n} {r}" for r, n in reasons.items()))
    return {
        "near_duplicates": plan.near.summary() | {"cross_split_pairs": cross, "group_list": groups[:10_000]},
        "exclusions": plan.exclusions,
        "excluded_patents": len(plan.excluded_by),
        "left_out": len(left_out),
        "left_out_by_reason": dict(reasons),
        "left_out_patents": len({x["patent_id"] for x in left_out if x["patent_id"] not in released}),
    }
