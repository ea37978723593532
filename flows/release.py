"""The release flow: finished render weeks -> `releases/{version}/` (train/val/test shards, manifest, card)."""

from __future__ import annotations

import re
from typing import Any

from designclip.flows.step import Run, Step, one
from designclip.pipeline.release.options import release_options
from designclip.pipeline.release.tally import split_table
from designclip.storage import layout
from designclip.tasks.release import release_task
from prefect import flow
from prefect.artifacts import create_markdown_artifact


def release_markdown(stats: dict[str, Any]) -> str:
    """The Prefect artifact: the per-split table plus what was left out."""
    head = f"Release `{stats['version']}` ({stats['status']}): {stats['samples']} samples of {stats['patents']} patents"
    lines = [head, "", split_table({"splits": stats["splits"]}), ""]
    if stats.get("duplicates"):
        lines.append(f"Duplicates dropped: {stats['duplicates']} (see stats.json)")
    near = stats.get("near_duplicates") or {}
    if near:
        lines.append(f"Near-duplicate groups: {near['groups']}; cross-split near-duplicate pairs: "
                     f"{near['cross_split_pairs']}")
    if stats.get("excluded_patents"):
        lines.append(f"Patents kept out of train/val (exclusion lists and their near-duplicates): "
                     f"{stats['excluded_patents']}")
    if stats.get("left_out"):
        lines.append(f"Samples left out (multi-FIG. fallbacks, dropped exclusions): {stats['left_out']} "
                     "(see stats.json)")
    if stats.get("unknown_cls"):
        lines.append(f"Samples without a US design class (cls -1): {stats['unknown_cls']}")
    for r in stats.get("revised") or []:
        lines.append(f"Revised week: {r['week']} ({r['from']} -> {r['to']})")
    for n in stats.get("not_included") or []:
        lines.append(f"Not included: week {n['week']} ({n['reason']})")
    return "\n".join(lines)


@flow(name="release", log_prints=True)
def release_flow(version: str, data_root: str, profile: str | None = None, years: list[int] | None = None,
                 ratios: str | None = None, split_by: str | None = None, shard_samples: int | None = None,
                 shard_bytes: int | None = None, caption_source: str | None = None, val_year: int | None = None,
                 test_year: int | None = None, exclude_patents: list[str] | None = None,
                 drop_excluded: bool = False, include_fallbacks: bool = False) -> dict[str, Any]:
    """Collect finished render weeks into one immutable release; the same version and inputs again is a no-op.

    Options left as None take ReleaseOptions' defaults (pipeline/release/options.py: the one place they live).
    """
    given = {"profile": profile, "ratios": ratios, "split_by": split_by, "shard_samples": shard_samples,
             "shard_bytes": shard_bytes, "caption_source": caption_source, "val_year": val_year,
             "test_year": test_year}
    options = release_options(years=years, exclude_patents=exclude_patents, drop_excluded=drop_excluded,
                              include_fallbacks=include_fallbacks, **{k: v for k, v in given.items() if v is not None})
    stats = dict(release_task(version, data_root, options).stats)
    key = "release-" + re.sub(r"[^a-z0-9-]+", "-", version.lower()).strip("-")
    create_markdown_artifact(release_markdown(stats), key=key, description=f"Release {version} by split")
    return stats


def _dag_call(r: Run) -> Any:
    return release_flow.fn(version=r.release, data_root=r.data_root, profile=r.profile.size_profile,
                           years=list(range(r.start.year, r.end.year + 1)),
                           caption_source=r.caption_set or r.profile.caption.backend, **r.release_options)


STEP = Step(_dag_call, one, lambda r, _: r.folder.path(layout.release_dir(r.release)))
