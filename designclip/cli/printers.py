"""What the stage commands print when they finish: counts and the folders to look in (shared by `designclip run`)."""

from __future__ import annotations

import argparse
import datetime as dt


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2021-01-05") from exc


def print_tables(data_root: str) -> None:
    from designclip.storage.folder import DataFolder
    from designclip.storage.tables import read_table

    folder = DataFolder(data_root)
    print(f"\nData root: {data_root}")
    for name in ("patents", "figures", "sheets", "errors"):
        n = read_table(folder, name, columns=["patent_id"]).num_rows
        print(f"  {name + '/':10s} {n:6d} rows   ({folder.path(name)})")
    print(f"  images/    TIFF sheets by byte range ({folder.path('images')})")
    print(f"  classes/   class-title tables ({folder.path('classes')})")


def print_render(rows: list[dict], data_root: str, profile: str) -> None:
    from designclip.storage.folder import DataFolder

    folder = DataFolder(data_root)
    views = sum(r.get("samples", 0) for r in rows)
    flagged = sum(r.get("flagged", 0) for r in rows)
    failures = sum(r.get("failures", 0) for r in rows)
    shards = sum(len(r.get("shards", [])) for r in rows)
    print(f"\nRendered {views} views in {shards} shards ({flagged} flagged for review, {failures} failures)")
    print(f"  shards/    WebDataset shards + Parquet index + stats ({folder.path('shards', profile)})")
    print(f"  previews/  contact sheets to look at ({folder.path('previews', profile)})")


def print_captions(summary: dict, data_root: str, profile: str) -> None:
    from designclip.storage.folder import DataFolder

    folder = DataFolder(data_root)
    cset = summary["caption_set"]
    print(f"\nCaptioned {summary['captioned']} of {summary['samples']} views with caption set {cset} "
          f"({summary['failures']} failures, {summary['skipped']} of {summary['shards']} shards already done)")
    print(f"  captions/  one Parquet per shard + stats ({folder.path('captions', profile, cset)})")
    print(f"  previews/  views with their captions ({folder.path('previews', profile, 'captions', cset)})")
    print(f"  release these captions with: designclip release --version V --captions {cset}")


def print_release(result: dict, data_root: str) -> None:
    from designclip.storage.folder import DataFolder

    folder = DataFolder(data_root)
    where = folder.path("releases", result["version"])
    state = "already released (unchanged)" if result.get("skipped") else "released"
    counts = ", ".join(f"{k} {v['samples'] if isinstance(v, dict) else v} views"
                       for k, v in result.get("splits", {}).items())
    print(f"\nRelease {result['version']} {state}: {counts}")
    print(f"  {where}  (README.md dataset card, sizes.json, *.wids.json, manifest.parquet, SHA256SUMS)")
    near = result.get("near_duplicates") or {}
    print(f"  near-duplicate groups: {near.get('groups', 0)} (cross-split pairs: {near.get('cross_split_pairs', 0)}); "
          f"patents kept out of train/val: {result.get('excluded_patents', 0)}; "
          f"samples left out: {result.get('left_out', 0)}")


def print_train(stats: dict) -> None:
    state = "already trained" if stats.get("skipped") else ("trained" if stats.get("finished") else "stopped at")
    print(f"\nRun {stats['run']} {state}: step {stats['step']} of {stats['total_steps']}")
    if stats.get("model_dir"):
        print(f"  model:  {stats['model_dir']}  (open_clip.create_model_and_transforms('local-dir:...'))")
    print(f"  curve:  {stats.get('loss_plot')}")
    print(f"  log:    {stats.get('metrics')}")
