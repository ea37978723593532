"""The real DeepPatent test lists scored with one encoder: every sheet preprocessed exactly as a training view.

A DeepPatent image is a whole drawing sheet; training views are FIG.s cut to their ink box with a margin and
centred on a white square (render.patent_views). A plain resize + centre crop would cut ~23 % of a portrait sheet, so
each sheet goes through ``pipeline.evaluate.deeppatent.sheet_view`` (ink box -> margin -> square at the release's
render size) and then the encoder's own transform, the one its training views went through. A model trained with a
preset (``higuchi``: whole sheets) records it, and its sheets go through that preset's ``eval_transform`` instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from designclip.pipeline.evaluate.deeppatent import (
    deeppatent_eval_by_patent,
    dira_top10,
    map_at_max_bin_count,
    read_deeppatent_lists,
    sheet_view,
)
from designclip.pipeline.evaluate.evaluation import EvaluationError, json_safe, top_indices
from designclip.pipeline.render.sheet_image import decode_sheet
from designclip.pipeline.train.data import decode_image

LISTS_PROTOCOL = ("DeepPatent test lists: each sheet cut to its ink box + margin and squared like a training "
                  "view; relevant = database images of the query's patent (id from the file name); mAP (official) "
                  "over the full ranking, mAP (pml) at max_bin_count, P@1")
SHEET_ERRORS = (OSError, ValueError)


def model_preset(encoder: Any) -> Any | None:
    """The training preset a model records (e.g. `higuchi`: its sheets go through that preset's eval transform)."""
    record = encoder.record() if hasattr(encoder, "record") else {}
    return (record.get("preprocess") or {}).get("preset") or record.get("preset")


def sheet_input(encoder: Any, size: int, margin: float, views: bool = False
                ) -> tuple[Any, Callable[[bytes], Any], str]:
    """(encoder to call, PNG bytes -> its input image, in words): the preprocessing the model was trained with.

    A model with a preset gets the whole decoded sheet through the preset's ``eval_transform`` (as in its training,
    e.g. binarise, crop to the drawing, resize + centre crop); a model without one (open_clip / DesignCLIP) gets the
    sheet cut and squared like a training view, then its own transform (``sheet_view``).
    """
    preset = model_preset(encoder)
    if preset is None and views:  # a rendered view is already what the model trained on: its own transform only
        return encoder, decode_image, "the rendered view as it is, then the model's transform"
    if preset is None:
        return (encoder, lambda png: sheet_view(png, size, margin),
                f"sheet cut to its ink box + {margin:g} margin, squared to {size} px, then the model's transform")
    try:
        from designclip.pipeline.train.sheet_transforms import eval_transform
    except ImportError as exc:
        raise EvaluationError(f"{getattr(encoder, 'tag', 'the model')} records preset {preset!r} but "
                              f"pipeline.train.sheet_transforms cannot be imported ({exc}): update designclip") from exc
    preset_encoder = copy.copy(encoder)  # the same model, with the preset's eval transform in place of its own
    preset_encoder.transform = eval_transform(preset)
    name = preset.get("name", "recorded settings") if isinstance(preset, dict) else preset
    what = "view" if views else "whole sheet"
    return preset_encoder, lambda png: decode_sheet(png, None), f"{what} through eval_transform({name!r})"


def encode_sheets(encoder: Any, files: list[str], batch_size: int, size: int, margin: float,
                  progress: Callable[[int, int], None] | None = None, views: bool = False
                  ) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Image vectors of DeepPatent sheets (or rendered views) in batches; (vectors, [(file, problem)]) with failures
    as zero rows."""
    encoder, prepare, _ = sheet_input(encoder, size, margin, views)
    out = np.zeros((len(files), encoder.dim), dtype=np.float32)
    bad: list[tuple[str, str]] = []
    for start in range(0, len(files), batch_size):
        images, rows = [], []
        for i in range(start, min(len(files), start + batch_size)):
            try:
                images.append(prepare(Path(files[i]).read_bytes()))
                rows.append(i)
            except SHEET_ERRORS as exc:  # OSError covers a missing file, ValueError an undecodable one
                bad.append((files[i], f"{type(exc).__name__}: {exc}"))
        if images:
            out[rows] = encoder.encode_images(images)
        if progress is not None:
            progress(min(len(files), start + batch_size), len(files))
    return out, bad


def _problem_message(bad: list[tuple[str, str]], what: str, limit: int = 5) -> str:
    first = "\n".join(f"  {f}: {p}" for f, p in bad[:limit])
    more = f"\n  ... and {len(bad) - limit} more" if len(bad) > limit else ""
    return f"{len(bad)} DeepPatent {what} could not be read:\n{first}{more}"


def list_patents(query_list: str | Path, db_list: str | Path) -> set[str]:
    """The patent ids the two lists name (what the training-overlap check compares with)."""
    _, _, query_patents, db_patents = read_deeppatent_lists(query_list, db_list, ".", check_images=False)
    return set(query_patents) | set(db_patents)


MISSING_EXAMPLES = 10
"""How many missing images a split's metrics name (``missing_examples``); ``missing_images`` counts them all."""


def missing_message(missing: list[str], total: int, image_root: str | Path, limit: int = 5) -> str:
    """The strict error: how many of the listed images are missing, the first few, and the two ways on."""
    first = "\n".join(f"  {name}" for name in missing[:limit])
    more = f"\n  ... and {len(missing) - limit} more" if len(missing) > limit else ""
    return (f"{len(missing)} of {total} listed DeepPatent images are missing under {image_root}:\n{first}{more}\n"
            "Pass --skip-missing-images to score the listed images that are there (the report records the rest); "
            "if the images come from `designclip deeppatent build`, its missing.json says why each is missing.")


def _present(files: list[str]) -> tuple[list[int], list[int]]:
    """(indices of lines whose image exists, indices of lines whose image does not)."""
    there = [Path(f).is_file() for f in files]
    return [i for i, ok in enumerate(there) if ok], [i for i, ok in enumerate(there) if not ok]


def _relative(file: str, image_root: str | Path) -> str:
    """A list line's image as the list names it (relative to the image root), for the report."""
    try:
        return Path(file).relative_to(image_root).as_posix()
    except ValueError:
        return file


def _full_top10(top: np.ndarray, query_keep: list[int], db_keep: list[int], queries: int) -> np.ndarray:
    """DIRA top-10 in the lists' own numbering: database indices of the db list, -1 rows for skipped queries."""
    out = np.full((queries, top.shape[1]), -1, dtype=np.int64)
    mapped = np.where(top >= 0, np.asarray(db_keep, dtype=np.int64)[np.clip(top, 0, None)], -1)
    out[query_keep] = mapped
    return out


def evaluate_deeppatent_lists(encoder: Any, query_list: str | Path, db_list: str | Path, image_root: str | Path,
                              batch_size: int = 64, progress: Callable[[int, int], None] | None = None,
                              size: int = 512, margin: float = 0.03, *, skip_missing: bool = False,
                              views: bool = False) -> tuple[dict[str, Any], np.ndarray]:
    """The real DeepPatent lists: both mAPs, P@1, top-k and the DIRA top-10 (int64 (queries, 10), -1 padded).

    A missing image is an error naming the count and the first few (a benchmark with silently dropped images would
    not be DeepPatent's any more) unless ``skip_missing``: then lines without their image are left out of query and
    database and counted (``missing_images`` of ``listed_images``, ``missing_examples``). An undecodable image is
    always an error. ``views``: the images are rendered per-FIG. views, not sheets (no squaring: ``sheet_input``).
    """
    query_files, db_files, query_patents, db_patents = read_deeppatent_lists(
        query_list, db_list, image_root, check_images=False)
    listed = len(query_files) + len(db_files)
    query_keep, query_gone = _present(query_files)
    db_keep, db_gone = _present(db_files)
    missing = [_relative(query_files[i], image_root) for i in query_gone]
    missing += [_relative(db_files[i], image_root) for i in db_gone]
    if missing and not skip_missing:
        raise EvaluationError(missing_message(missing, listed, image_root))
    if not query_keep or not db_keep:
        raise EvaluationError(f"none of the listed {'queries' if not query_keep else 'database images'} of "
                              f"{query_list if not query_keep else db_list} is under {image_root}: point "
                              "--deeppatent-images at the folder the lists' paths start in")
    queries = len(query_files)
    query_files, query_patents = [query_files[i] for i in query_keep], [query_patents[i] for i in query_keep]
    db_files, db_patents = [db_files[i] for i in db_keep], [db_patents[i] for i in db_keep]
    total = len(query_files) + len(db_files)

    def step(offset: int) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, _n: progress(offset + done, total))

    qx, bad_q = encode_sheets(encoder, query_files, batch_size, size, margin, step(0), views)
    dx, bad_d = encode_sheets(encoder, db_files, batch_size, size, margin, step(len(query_files)), views)
    if bad_q or bad_d:
        raise EvaluationError(_problem_message([*bad_q, *bad_d], f"images (of {total})"))
    result = deeppatent_eval_by_patent(qx, dx, query_patents, db_patents)
    metrics = {
        "protocol": LISTS_PROTOCOL, "query_list": str(query_list), "db_list": str(db_list),
        "image_root": str(image_root), "view_size": size, "margin": margin,
        "preprocessing": sheet_input(encoder, size, margin, views)[2],
        "mAP": result["mAP"], "mAP_pml": map_at_max_bin_count(qx, dx, query_patents, db_patents),
        "top_k": result["top_k"], "k_used": result["k_used"], "queries": result["queries"],
        "evaluated": result["evaluated"], "skipped_queries": result["skipped"], "database": result["database"],
        "patents": len(set(query_patents) | set(db_patents)), "listed_images": listed,
        "missing_images": len(missing), "missing_examples": missing[:MISSING_EXAMPLES],
    }
    return json_safe(metrics), _full_top10(dira_top10(top_indices(qx, dx, 10)), query_keep, db_keep, queries)
