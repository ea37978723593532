"""The DeepPatent benchmark cut into per-FIG. views, scored beside the sheet level with the same model and metrics.

`designclip deeppatent build` (after render) writes the listed test/val patents' rendered views under `views/images/`
and per-split lists under `views/lists/` (``pipeline.deeppatent.views``): one view of each query patent with two or
more views is its query, the database is every other view of the split's patents, relevant = the other views of the
query's patent. They are scored like the sheet lists (both mAPs, P@1, top-k), each view through the model's own
preprocessing for a view; the build's counts (listed patents without views, single-view query patents) travel with
the numbers, so what was left out is named, never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from designclip.pipeline.deeppatent.views import VIEW_LISTS, VIEWS_DIR, VIEWS_PROTOCOL
from designclip.pipeline.evaluate.lists import evaluate_deeppatent_lists


def views_folder(lists_folder: str | Path) -> Path | None:
    """`<build>/views` beside the `lists/` of a `designclip deeppatent build` folder; None for lists without it."""
    folder = Path(lists_folder).parent / VIEWS_DIR
    return folder if (folder / "lists" / VIEW_LISTS["test"][0]).is_file() else None


def per_view_variant(encoder: Any, lists_folder: str | Path, batch_size: int = 64,
                     progress: Callable[[int, int], None] | None = None, size: int = 512, margin: float = 0.03,
                     skip_missing: bool = False) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """({split: metrics + the build's counts}, {split: DIRA top-10}) for every split with per-view lists; ({}, {})
    when the lists have none."""
    folder = views_folder(lists_folder)
    if folder is None:
        return {}, {}
    summary_file = folder / "views.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    out: dict[str, Any] = {}
    tops: dict[str, np.ndarray] = {}
    for split, (query, db) in VIEW_LISTS.items():
        query_list, db_list = folder / "lists" / query, folder / "lists" / db
        if not (query_list.is_file() and db_list.is_file()):
            continue
        counts = {"protocol": VIEWS_PROTOCOL, "views_dir": str(folder),
                  **(summary.get("splits") or {}).get(split, {}),
                  "weeks_not_rendered": len(summary.get("weeks_not_rendered") or [])}
        if not query_list.read_text().strip() or not db_list.read_text().strip():
            out[split] = {**counts, "skipped": "no query patent has two or more rendered views: render the lists' "
                                               "weeks, then run `designclip deeppatent build` again"}
            continue
        metrics, tops[split] = evaluate_deeppatent_lists(encoder, query_list, db_list, folder / "images", batch_size,
                                                         progress, size=size, margin=margin,
                                                         skip_missing=skip_missing, views=True)
        out[split] = {**counts, **metrics, "protocol": VIEWS_PROTOCOL, "split": split,
                      "p_at_1": (metrics.get("top_k") or {}).get("1")}
    return out, tops
