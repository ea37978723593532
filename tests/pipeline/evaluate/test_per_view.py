"""The per-FIG. variant: only the listed patents' views of the release's test split, one view per query, the missing
listed patents counted and named."""

from __future__ import annotations

import numpy as np
from designclip.pipeline.evaluate.per_view import per_view_split

from tests.fixtures.evaluate import make_split


def test_listed_patents_views_are_scored_and_missing_ones_named() -> None:
    eye = np.eye(8)
    # rows: A x3 (one unreadable), B x2, C x1, E x2 (E is not listed); every view of a patent points the same way
    patents = ["A", "A", "A", "B", "B", "C", "E", "E"]
    direction = {"A": 0, "B": 1, "C": 2, "E": 0}  # E looks exactly like A: it would steal A's hits if kept
    image = np.stack([eye[direction[p]] + 0.01 * eye[3 + i % 5] for i, p in enumerate(patents)])
    ok = [True, False, True, True, True, True, True, True]
    test = make_split(image, patents=patents, image_ok=ok, errors=[None, "unreadable", *[None] * 6])
    out = per_view_split(test, {"A", "B", "C", "D"}, "v9", seed=0)
    assert (out["listed_patents"], out["patents_with_views"], out["views"]) == (4, 3, 6)
    assert (out["missing_patents"], out["missing_examples"]) == (1, ["D"])
    # A (2 readable views) and B give one query each; the database is A's other view, B's other view and C
    assert (out["queries"], out["database"], out["distractor_patents"]) == (2, 3, 1)
    assert out["mAP"] == 1.0 and out["mAP_pml"] == 1.0 and out["p_at_1"] == 1.0
    assert out["left_out"] == {"unreadable": 1} and out["release"] == "v9"


def test_a_release_without_the_listed_patents_is_said_not_scored() -> None:
    test = make_split(np.eye(3), patents=["X", "X", "Y"])
    out = per_view_split(test, {"A", "B"}, "v9")
    assert out["views"] == 0 and out["missing_patents"] == 2
    assert "holds no test view of the 2 listed patents" in out["skipped"]
