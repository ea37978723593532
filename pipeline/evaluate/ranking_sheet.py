"""A DeepPatent ranking as a picture: some queries, each with its first hits, right hits framed green, wrong red.

Both mAPs say how good a ranking is; the picture says why (a near-identical sheet of another patent, a view that
lost its FIG. label). Queries are spread evenly over the list, so the picture is the same for the same lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from designclip.pipeline.common.contact_sheet import Thumb, contact_sheet, thumbnail
from designclip.pipeline.evaluate.deeppatent import read_deeppatent_lists
from PIL import Image

ROWS, HITS, CELL = 8, 5, 150


def _thumb(file: str, label: str, frame: str = "") -> Thumb:
    try:
        return thumbnail(Path(file).read_bytes(), label, cell=CELL, frame=frame)
    except (OSError, ValueError, Image.DecompressionBombError):  # the sheet was scored as missing, or cannot be read
        return Thumb(f"{label} (unreadable)", Image.new("L", (CELL - 8, CELL - 8), 230), frame=frame or "gray")


def ranking_picture(metrics: dict[str, Any], top: np.ndarray, title: str, rows: int = ROWS, hits: int = HITS
                    ) -> bytes | None:
    """PNG: `rows` queries (one per row, evenly spread over the query list) and their first `hits` database images.

    `metrics` are one split's (its ``query_list``, ``db_list``, ``image_root``); `top` its DIRA top-10, numbered
    by the lists' own lines (-1: none). None when no query was ranked.
    """
    query_files, db_files, query_patents, db_patents = read_deeppatent_lists(
        metrics["query_list"], metrics["db_list"], metrics["image_root"], check_images=False)
    ranked = [i for i in range(min(len(query_files), len(top))) if top[i, 0] >= 0]
    if not ranked:
        return None
    chosen = [ranked[int(j)] for j in np.unique(np.linspace(0, len(ranked) - 1, min(rows, len(ranked))).round())]
    thumbs: list[Thumb] = []
    for q in chosen:
        thumbs.append(_thumb(query_files[q], f"query {query_patents[q]}", "blue"))
        for rank, d in enumerate(top[q, :hits], start=1):
            if d < 0:
                thumbs.append(Thumb("", Image.new("L", (1, 1), 255)))
                continue
            right = db_patents[d] == query_patents[q]
            thumbs.append(_thumb(db_files[d], f"{rank}. {db_patents[d]}", "green" if right else "red"))
    return contact_sheet(thumbs, columns=hits + 1, cell=CELL, title=title)


def ranking_pictures(bench: dict[str, Any], tops: dict[str, np.ndarray], tag: str) -> dict[str, bytes]:
    """{file name: PNG} for the test split's sheets and, when scored, its per-FIG. views."""
    out: dict[str, bytes] = {}
    parts = {"deeppatent_sheets.png": (bench.get("splits", {}).get("test"), tops.get("test"), "sheets"),
             "deeppatent_views.png": ((bench.get("per_view") or {}).get("test"), tops.get("views_test"),
                                      "per-FIG. views")}
    for name, (metrics, top, what) in parts.items():
        if not metrics or top is None or metrics.get("skipped"):
            continue
        picture = ranking_picture(metrics, top, f"{tag} on DeepPatent test ({what}): query (blue), first "
                                                f"{HITS} hits, same patent green, other red")
        if picture is not None:
            out[name] = picture
    return out
