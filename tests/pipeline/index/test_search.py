"""Text and drawing search on the real embedded sample release, checked against brute-force scores."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from designclip.pipeline.index.search import Hit, SearchSetupError, hits_sheet, open_searcher
from PIL import Image


def _exact(searcher: Any, vectors: dict[str, Any], query: np.ndarray) -> list[tuple[float, str]]:
    scores = vectors["image"] @ query.reshape(-1)
    order = np.argsort(-scores, kind="stable")
    return [(float(scores[i]), vectors["keys"][i]) for i in order]


def _caption(searcher: Any, key: str) -> str:
    return searcher.catalog.members(key, ("txt",))["txt"].decode()


def test_caption_text_finds_ranked_unique_patents(searcher: Any, vectors: dict[str, Any]) -> None:
    key = vectors["keys"][len(vectors["keys"]) // 2]
    caption = _caption(searcher, key)
    assert caption.strip()
    hits = searcher.search_text(caption, k=5)
    assert 1 <= len(hits) <= 5
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({h.patent_id for h in hits}) == len(hits)
    exact = _exact(searcher, vectors, searcher.encoder.encode_texts([caption]))
    by_key = {k: s for s, k in exact}
    assert hits[0].score == pytest.approx(exact[0][0], abs=1e-4)  # the best view (near-ties may swap keys)
    for hit in hits:
        assert hit.score == pytest.approx(by_key[hit.key], abs=1e-4)
        meta = searcher.catalog.meta(hit.key)
        assert (hit.patent_id, hit.fig, hit.view, hit.uspc_class, hit.locarno_class) == (
            meta["patent_id"], meta["fig"], meta["view"], meta["uspc_class"], meta["locarno_class"])
        assert hit.title == meta["title"] and hit.title
        assert all(vectors["patents"][v] == hit.patent_id for v in hit.views)
        ordered = [hit.score, *(by_key[v] for v in hit.views)]
        assert all(a >= b - 1e-5 for a, b in zip(ordered, ordered[1:], strict=False))


def test_view_ranking_is_the_exact_top_k(searcher: Any, vectors: dict[str, Any]) -> None:
    query = "a shoe with a thick sole, side view"
    hits = searcher.search_text(query, k=10, per_patent=False)
    exact = _exact(searcher, vectors, searcher.encoder.encode_texts([query]))[:10]
    assert len(hits) == 10
    by_key = {k: s for s, k in _exact(searcher, vectors, searcher.encoder.encode_texts([query]))}
    assert [h.score for h in hits] == pytest.approx([s for s, _ in exact], abs=1e-4)
    assert all(h.score == pytest.approx(by_key[h.key], abs=1e-4) for h in hits)
    assert all(by_key[h.key] >= exact[-1][0] - 1e-4 for h in hits)  # the exact top 10, up to float near-ties
    assert all(h.views == [] for h in hits)
    assert len({h.patent_id for h in hits}) < 10  # several views of one patent: nothing collapsed here


def test_per_patent_collapse_covers_every_view_once(searcher: Any, vectors: dict[str, Any]) -> None:
    """k above the number of patents: one hit per patent, each indexed view either the hit or one of its views."""
    patents = set(vectors["patents"].values())
    hits = searcher.search_text("a decorative pattern", k=50)
    assert len(hits) == len(patents) and {h.patent_id for h in hits} == patents
    shown = [h.key for h in hits] + [v for h in hits for v in h.views]
    assert sorted(shown) == sorted(vectors["keys"])


def test_a_views_own_png_finds_itself_first(searcher: Any, vectors: dict[str, Any], distinct_key: str) -> None:
    key = distinct_key
    png = searcher.catalog.png(key)
    hits = searcher.search_image(png, k=5)
    assert hits[0].key == key and hits[0].patent_id == vectors["patents"][key]
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.patent_id for h in hits}) == 5
    as_image = searcher.search_image(Image.open(io.BytesIO(png)), k=5)
    assert [(h.key, h.score) for h in as_image] == [(h.key, h.score) for h in hits]


def test_every_views_png_scores_itself_as_high_as_any(searcher: Any, vectors: dict[str, Any]) -> None:
    """The query path (PNG bytes -> decode -> encoder) gives the vector the embed stage stored for that view."""
    for key in vectors["keys"]:
        hits = searcher.search_image(searcher.catalog.png(key), k=len(vectors["keys"]), per_patent=False)
        scores = {h.key: h.score for h in hits}
        assert scores[key] == pytest.approx(1.0, abs=1e-4) and scores[key] >= hits[0].score - 1e-5, key


@pytest.mark.parametrize("query", ["", "   \n\t"])
def test_empty_text_is_refused(searcher: Any, query: str) -> None:
    with pytest.raises(ValueError, match="empty query"):
        searcher.search_text(query)


@pytest.mark.parametrize("k", [0, -3, 100_000, 2.5])
def test_bad_k_is_refused(searcher: Any, k: Any) -> None:
    with pytest.raises(ValueError, match="ask for 1 to"):
        searcher.search_text("a chair", k=k)


@pytest.mark.parametrize("body", [b"", b"not a picture at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_undecodable_drawings_are_refused(searcher: Any, body: bytes) -> None:
    with pytest.raises(ValueError, match="image"):
        searcher.search_image(body)


def _cell_is_blank(sheet: Image.Image, i: int, columns: int = 5) -> bool:
    x, y = (i % columns) * 200, 22 + (i // columns) * 296
    cell = np.asarray(sheet.convert("L").crop((x, y, x + 200, y + 200)))
    return bool((cell == 255).all())


def test_contact_sheet_has_one_labelled_cell_per_hit(searcher: Any) -> None:
    hits = searcher.search_text("a vehicle bumper", k=7)
    assert len(hits) == 7
    png = searcher.hits_sheet(hits, "a vehicle bumper")
    sheet = Image.open(io.BytesIO(png))
    sheet.load()
    assert sheet.format == "PNG" and sheet.size == (5 * 200, 22 + 2 * (200 + 96))
    assert [_cell_is_blank(sheet, i) for i in range(10)] == [False] * 7 + [True] * 3


def test_contact_sheet_shows_gray_for_an_unreadable_view() -> None:
    hit = Hit(1, "USD0000001_f1", "USD0000001", "Chair", "1", "front", "D6", "06", 0.5)
    png = hits_sheet([hit], {"USD0000001_f1": b"broken"}, "t")
    cell = np.asarray(Image.open(io.BytesIO(png)).convert("L").crop((10, 40, 190, 200)))
    assert (cell == 230).mean() > 0.9


def test_missing_embeddings_or_index_name_the_command(indexed_v1: dict, tmp_path: Path) -> None:
    root, release = indexed_v1["data_root"], indexed_v1["release"]
    with pytest.raises(SearchSetupError, match=r"designclip embed --release v1 --model ViT-B-32 --pretrained openai"):
        open_searcher(root, release, "ViT-B-32", pretrained="openai")
    copy = tmp_path / "data"
    for part in (f"releases/{release}", f"embeddings/{release}"):
        shutil.copytree(Path(root) / part, copy / part)
    with pytest.raises(SearchSetupError, match=r"no image index: run `designclip index --release v1 --model "):
        open_searcher(str(copy), release, indexed_v1["model"])


def test_hits_are_json_ready(searcher: Any) -> None:
    hit = searcher.search_text("a light", k=1)[0]
    assert json.loads(json.dumps(hit.to_dict()))["key"] == hit.key


def test_collapse_by_hand() -> None:
    """Best view per patent in score order; later views of a shown patent become its `views`, others wait."""
    from designclip.pipeline.index.search import collapse

    rows = [(0.9, "A_f1"), (0.8, "A_f2"), (0.7, "B_f1"), (0.6, "C_f1"), (0.5, "B_f2"), (0.4, "A_f3")]
    meta = {k: {"patent_id": k.split("_")[0], "title": f"title {k[0]}", "fig": k[-1]} for _, k in rows}
    hits = collapse(rows, meta.__getitem__, 2, per_patent=True)
    assert [(h.rank, h.key, h.patent_id, h.score, h.views) for h in hits] == [
        (1, "A_f1", "A", 0.9, ["A_f2", "A_f3"]), (2, "B_f1", "B", 0.7, ["B_f2"])]
    assert hits[0].title == "title A" and hits[0].fig == "1"
    views = collapse(rows, meta.__getitem__, 3, per_patent=False)
    assert [(h.rank, h.key, h.views) for h in views] == [(1, "A_f1", []), (2, "A_f2", []), (3, "B_f1", [])]
    assert collapse([], meta.__getitem__, 3, per_patent=True) == []
