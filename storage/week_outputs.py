"""A week's rendered and captioned outputs, removable as one: what `rerun --force` forgets for a week, and what a
newer revision of the week's archive makes stale (its views and captions were cut from the old sheets)."""

from __future__ import annotations

import datetime as dt

from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import remove_tree


def forget_file(folder: DataFolder, rel: str, removed: list[str]) -> None:
    """Delete one file under the root when it is there, and say so in `removed`."""
    if folder.exists(rel):
        folder.remove(rel)
        removed.append(rel)


def forget_tree(folder: DataFolder, rel: str, removed: list[str]) -> None:
    """Delete a folder (or file) under the root, its done markers first, and say so in `removed`."""
    if remove_tree(folder, rel):
        removed.append(rel)


def caption_sets_on_disk(folder: DataFolder, profile: str) -> list[str]:
    """Every caption set folder of a render profile (finished or not)."""
    return folder.ls_dirs(layout.caption_profile_dir(profile))


def forget_render(folder: DataFolder, profile: str, week: dt.date, removed: list[str]) -> None:
    """The week's render marker (first), shards and preview under one render profile."""
    forget_file(folder, layout.stats_marker(layout.render_stage(profile), week), removed)
    forget_tree(folder, layout.shard_dir(profile, week), removed)
    forget_file(folder, layout.preview_file(profile, week), removed)


def forget_captions(folder: DataFolder, profile: str, week: dt.date, removed: list[str]) -> None:
    """The week's captions (markers first) and caption previews in every caption set of one render profile."""
    for cset in caption_sets_on_disk(folder, profile):
        forget_tree(folder, layout.caption_dir(profile, cset, week), removed)
        forget_file(folder, layout.caption_preview(profile, cset, week), removed)


def forget_week_downstream(folder: DataFolder, week: dt.date) -> list[str]:
    """Every render profile's views and captions of the week (a revised archive replaces its sheets)."""
    removed: list[str] = []
    for profile in folder.ls_dirs(layout.shard_profile_dir()):
        forget_render(folder, profile, week, removed)
    for profile in folder.ls_dirs(layout.caption_root_dir()):
        forget_captions(folder, profile, week, removed)
    return removed
