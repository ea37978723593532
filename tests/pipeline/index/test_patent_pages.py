"""A patent's page on the real sample release: every view of the patent (in FIG. order), the title, classes,
claim and grant date from its sample json, and its Google Patents link."""

from __future__ import annotations

from typing import Any

import pytest
from designclip.pipeline.index.patent_pages import PatentPages, public_url


def test_public_url_is_google_patents_without_leading_zeros() -> None:
    assert public_url("USD0909824", "2021-01-12") == "https://patents.google.com/patent/USD909824S1"
    assert public_url("USD0432100", "2000-10-17") == "https://patents.google.com/patent/USD432100S"
    assert public_url("US0909824") is None and public_url("") is None


def test_the_page_has_every_view_and_the_patents_text(searcher: Any) -> None:
    catalog = searcher.catalog
    keys = catalog.keys()
    by_patent: dict[str, list[str]] = {}
    for key in keys:
        by_patent.setdefault(catalog.ref(key).patent_id, []).append(key)
    patent, views = max(by_patent.items(), key=lambda pv: len(pv[1]))
    page = PatentPages(catalog).page(views[-1])
    meta = catalog.meta(views[-1])
    assert page["patent_id"] == patent and sorted(v["key"] for v in page["views"]) == sorted(views)
    figs = [int(v["fig"]) for v in page["views"] if str(v["fig"]).isdigit()]
    assert figs == sorted(figs) and len(views) > 1
    for name in ("title", "claim", "grant_date", "uspc_class", "locarno_class"):
        assert page[name] == meta[name] and page[name], name
    assert "ornamental design" in page["claim"]
    assert page["public_url"] == public_url(patent, meta["grant_date"]) and page["public_site"] == "Google Patents"
    with pytest.raises(KeyError):
        PatentPages(catalog).page("USD0000000_f1")
