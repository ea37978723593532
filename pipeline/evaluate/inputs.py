"""What an evaluation reads: the release's evaluation splits, their vectors (embedded first when missing), the lists."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from designclip.pipeline.common.stage import Logger
from designclip.pipeline.deeppatent.views import VIEW_LISTS
from designclip.pipeline.embed.encoder import EncoderSpec
from designclip.pipeline.evaluate.benchmark import benchmark_lists, lists_folder
from designclip.pipeline.evaluate.per_view import views_folder
from designclip.storage import layout
from designclip.storage.embeddings import EmbeddingsMissing, embedded_splits
from designclip.storage.folder import DataFolder

EVAL_SPLITS = ("test", "val")  # test is evaluated; val fits the probes (never train: the encoder saw it)
LIST_KEYS = ("query_list", "db_list", "image_root")


def lists_record(lists: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The DeepPatent lists as an input: paths with size and mtime (other lists or images -> another report)."""
    if not lists:
        return None
    if lists.get("lists_dir"):
        return _benchmark_record(lists)
    missing = [k for k in LIST_KEYS if not lists.get(k)]
    if missing:
        raise ValueError(f"deeppatent_lists needs {', '.join(LIST_KEYS)}; missing {', '.join(missing)}")
    out: dict[str, Any] = {}
    for key in LIST_KEYS:
        path = os.path.abspath(lists[key])
        stat = os.stat(path) if os.path.exists(path) else None
        out[key] = {"path": path, "size": stat.st_size if stat else None, "mtime": stat.st_mtime if stat else None}
    return out


def _stat(path: str | os.PathLike) -> dict[str, Any]:
    path = os.path.abspath(path)
    stat = os.stat(path) if os.path.exists(path) else None
    return {"path": path, "size": stat.st_size if stat else None, "mtime": stat.st_mtime if stat else None}


def _benchmark_record(lists: Mapping[str, str]) -> dict[str, Any]:
    """A benchmark folder as an input: every list file of it and of its per-FIG. views (size, mtime) and the image
    root."""
    if not lists.get("image_root"):
        raise ValueError("deeppatent_lists with lists_dir needs image_root (the folder the lists' paths start in)")
    files = {f"{split}_{key}": _stat(path) for split, pair in benchmark_lists(lists["lists_dir"]).items()
             for key, path in pair.items()}
    views = views_folder(lists_folder(lists["lists_dir"]))
    if views is not None:  # the per-FIG. variant's lists change when more weeks are rendered and built
        files |= {f"views_{name}": _stat(views / "lists" / name) for pair in VIEW_LISTS.values() for name in pair
                  if (views / "lists" / name).is_file()}
    return {"lists_dir": os.path.abspath(lists["lists_dir"]), **files, "image_root": _stat(lists["image_root"])}


def release_splits(folder: DataFolder, release: str) -> list[str]:
    """The evaluation splits this release has (a release without a test split cannot be evaluated)."""
    have = [s for s in EVAL_SPLITS if folder.exists(layout.release_file(release, layout.release_sizes_name(s)))]
    if "test" not in have:
        raise EmbeddingsMissing(f"release {release!r} has no finished test split under {folder.url}: build it with "
                                f"`designclip release --version {release}`")
    return have


def empty_test_split(folder: DataFolder, release: str) -> str | None:
    """Why there is nothing to evaluate (the release's test split holds no view), or None when there is."""
    sizes = folder.read_json(layout.release_file(release, layout.release_sizes_name("test")))
    if sum(int(n) for n in sizes.values()):
        return None
    return (f"release {release!r} has no test views (too few patents for a test split: a hash split gives every "
            "share a patent once the release has at least 3, or the test share is 0): evaluation skipped; build a "
            "release over more weeks to evaluate")


def missing_splits(folder: DataFolder, release: str, tag: str, splits: list[str]) -> list[str]:
    """The evaluation splits not embedded by `tag` yet."""
    done = embedded_splits(folder, release, tag)
    return [s for s in splits if s not in done]


def ensure_embeddings(data_root: str, release: str, spec: EncoderSpec, tag: str, splits: list[str], batch_size: int,
                      device: str | None, embed_missing: bool, log: Logger) -> list[str]:
    """Embed the evaluation splits that are not embedded yet (or say which command does); returns those embedded."""
    missing = missing_splits(DataFolder(data_root), release, tag, splits)
    if not missing:
        return []
    if not embed_missing:
        raise EmbeddingsMissing(f"release {release} split(s) {', '.join(missing)} are not embedded by {tag}: run "
                                f"`designclip embed --release {release} --model {spec.model}"
                                + (f" --pretrained {spec.pretrained}`" if spec.pretrained else "`"))
    from designclip.pipeline.embed.driver import embed_release

    log.info("evaluate %s: embedding the %s split(s) of release %s first", tag, ",".join(missing), release)
    summary = embed_release(data_root, release, spec, splits=missing, batch_size=batch_size, device=device,
                            logger=log, tag=tag)
    if summary["failed_shards"]:
        raise EmbeddingsMissing(f"embedding failed for {', '.join(summary['failed_shards'])}")
    return missing
