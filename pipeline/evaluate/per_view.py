"""The DeepPatent benchmark cut into per-FIG. views: the listed patents' rendered views in a release, view by view.

DeepPatent ranks whole drawing sheets; this project renders every FIG. as its own view. The per-view variant takes
the patents a benchmark split lists, finds their views in the release's test split (where a release covering
DeepPatent's weeks puts them: they are excluded from train and val), and runs this project's DeepPatent protocol on
those views (``evaluation.evaluate_deeppatent_split``, one view per query): one view of each patent with two or more
views is a query, relevant = the other views of the same patent, single-view patents stay as distractors. Reported
beside the sheet-level scores; listed patents the release does not hold are counted and named, never dropped silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from designclip.pipeline.evaluate.benchmark import benchmark_lists
from designclip.pipeline.evaluate.evaluation import evaluate_deeppatent_split, json_safe
from designclip.pipeline.evaluate.lists import list_patents
from designclip.storage.embeddings import SplitVectors

PER_VIEW_PROTOCOL = ("per-FIG. views of the listed patents (the release's test split): one view per patent with two "
                     "or more readable views is a query, relevant = the other views of its patent; single-view "
                     "patents are distractors in the database")


def listed_views(test: SplitVectors, patents: set[str]) -> SplitVectors:
    """The release test rows of the listed patents (vectors and metadata row-aligned, release order kept)."""
    ids = test.meta.column("patent_id").to_pylist()
    rows = np.asarray([i for i, p in enumerate(ids) if p in patents], dtype=np.int64)
    return SplitVectors(test.image[rows], None if test.text is None else test.text[rows], test.meta.take(rows))


def per_view_split(test: SplitVectors, patents: set[str], release: str, seed: int = 0) -> dict[str, Any]:
    """One benchmark split as per-FIG. views: the protocol's numbers plus which listed patents the release lacks."""
    views = listed_views(test, patents)
    found = set(views.meta.column("patent_id").to_pylist())
    missing = sorted(patents - found)
    base = {"protocol": PER_VIEW_PROTOCOL, "release": release, "listed_patents": len(patents),
            "patents_with_views": len(found), "views": len(views), "missing_patents": len(missing),
            "missing_examples": missing[:10]}
    if not len(views):
        return {**base, "skipped": f"release {release} holds no test view of the {len(patents)} listed patents "
                                   "(build a release over DeepPatent's weeks: its test and val patents go to test)"}
    section, _ = evaluate_deeppatent_split(views, seed)
    part = section["views_per_query"]["1"]
    out = {**base, **part, "left_out": section.get("left_out")}
    if "skipped" in part:
        out["skipped"] = part["skipped"]
    else:
        out["p_at_1"] = (part.get("top_k") or {}).get(1, (part.get("top_k") or {}).get("1"))
    return json_safe(out)


def per_view_variant(test: SplitVectors, lists_dir: str, release: str, seed: int = 0) -> dict[str, Any]:
    """{split: per-view metrics} for every split of the benchmark folder (test, and val when listed)."""
    return {split: per_view_split(test, list_patents(pair["query_list"], pair["db_list"]), release, seed)
            for split, pair in benchmark_lists(lists_dir).items()}
