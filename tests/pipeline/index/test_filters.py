"""Search filters: parsing URL values, matching metadata rows, facet counts, and a filtered search on the real
sample release equal to the unfiltered ranking with the non-matching views taken out."""

from __future__ import annotations

from typing import Any

import pytest
from designclip.pipeline.index.filters import SearchFilter, facet_counts, grant_year

ROW = {"uspc_class": "D14", "locarno_class": "14", "grant_date": "2021-08-17", "view": "Front"}


def test_parse_and_match() -> None:
    assert not SearchFilter.parse({}) and not SearchFilter.parse({"uspc": " ", "year": ""})
    f = SearchFilter.parse({"uspc": "D14", "locarno": "14", "year": "2021", "view": "front"})
    assert f.to_dict() == {"uspc": "D14", "locarno": "14", "year": 2021, "view": "front"} and f.matches(ROW)
    for other in ({"uspc": "D2"}, {"locarno": "02"}, {"year": "2020"}, {"view": "top"}):
        assert not SearchFilter.parse(other).matches(ROW), other
    assert not SearchFilter(year=2021).matches({"grant_date": None})
    assert grant_year("2019-01-01") == 2019 and grant_year(None) is None and grant_year("n/a") is None


@pytest.mark.parametrize(("params", "message"), [
    ({"year": "21st"}, "give a grant year"),
    ({"year": "0999"}, "give a grant year"),
    ({"uspc": "<script>"}, "not a value this filter takes"),
    ({"view": "x" * 80}, "not a value this filter takes"),
])
def test_bad_values_are_refused(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchFilter.parse(params)


def test_facet_counts_most_common_first() -> None:
    rows = [ROW, ROW, {**ROW, "uspc_class": "D2", "view": None}, {"uspc_class": None, "grant_date": "2020-01-07"}]
    facets = facet_counts(rows)
    assert facets["uspc"] == [{"value": "D14", "views": 2}, {"value": "D2", "views": 1}]
    assert facets["year"] == [{"value": 2021, "views": 3}, {"value": 2020, "views": 1}]
    assert facets["view"] == [{"value": "Front", "views": 2}]


def test_filtered_search_is_the_ranking_without_the_other_views(searcher: Any) -> None:
    facets = searcher.facets()
    uspc = facets["uspc"][1]["value"]  # the second most common class: others outrank it often
    year = facets["year"][0]["value"]
    query = "a chair with curved legs"
    everything = searcher.search_text(query, k=1000, per_patent=False)
    wanted = SearchFilter(uspc=uspc, year=year)
    expected = [h.key for h in everything if h.uspc_class == uspc][:5]
    hits = searcher.search_text(query, k=5, per_patent=False, where=wanted)
    assert [h.key for h in hits] == expected and len(hits) == 5
    assert all(h.uspc_class == uspc and h.grant_date.startswith(str(year)) for h in hits)
    per_patent = searcher.search_text(query, k=3, where=SearchFilter(view="front"))
    assert per_patent and all(h.view == "front" and all(searcher.meta[k]["view"] == "front" for k in h.views)
                              for h in per_patent)
    assert searcher.search_text(query, k=3, where=SearchFilter(year=1901)) == []
