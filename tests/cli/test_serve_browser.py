"""The search page in headless Chromium: type a query, see result cards with loaded thumbnails; upload a drawing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from designclip.pipeline.index.filters import SearchFilter

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOT = Path(os.environ.get("DESIGNCLIP_SEARCH_SCREENSHOT", "/tmp/search_page.png"))
ALL_THUMBS_LOADED = ("() => { const imgs = [...document.querySelectorAll('#results .card img')];"
                     " return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }")


@pytest.fixture(scope="module")
def browser_page() -> Any:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no browser at {CHROMIUM}: install Debian's chromium (apt-get install chromium) to run this")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright; no browser download "
                    "needed, the test drives /usr/bin/chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # bypass_csp: playwright's own wait_for_function evaluates strings, which the page's CSP rightly forbids
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page, errors
        browser.close()


def _cards(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all("#results .card", """cards => cards.map(c => ({
        key: c.dataset.key, patent: c.dataset.patent,
        title: c.querySelector('.title').textContent, head: c.querySelector('.head').textContent,
        facts: c.querySelector('.facts').textContent, width: c.querySelector('img').naturalWidth}))""")


def test_typing_a_query_shows_cards_with_thumbnails(browser_page: Any, search_url: str, searcher: Any) -> None:
    page, errors = browser_page
    page.goto(search_url + "/")
    page.wait_for_function("() => document.getElementById('info').textContent.includes('views')")
    page.fill("#query", "a shoe with laces")
    page.select_option("#k", "10")
    page.click("#search-button")
    page.wait_for_selector("#results .card")
    page.wait_for_function(ALL_THUMBS_LOADED)
    cards = _cards(page)
    expected = searcher.search_text("a shoe with laces", k=10)
    assert [c["key"] for c in cards] == [h.key for h in expected]
    for card, hit in zip(cards, expected, strict=True):
        assert card["width"] > 0
        assert card["title"] == hit.title and hit.title
        assert hit.patent_id in card["head"] and f"#{hit.rank}" in card["head"]
        assert f"FIG. {hit.fig}" in card["facts"] and f"class {hit.uspc_class}" in card["facts"]
    assert "results for a shoe with laces" in page.inner_text("#status")
    assert errors == []
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000


def test_uploading_a_drawing_finds_its_patent(browser_page: Any, search_url: str, searcher: Any, distinct_key: str,
                                              tmp_path: Path) -> None:
    page, errors = browser_page
    key = distinct_key
    drawing = tmp_path / "my drawing.png"
    drawing.write_bytes(searcher.catalog.png(key))
    page.goto(search_url + "/")
    page.set_input_files("#drawing", str(drawing))
    page.wait_for_function("() => document.getElementById('status').textContent.includes('my drawing.png')")
    page.wait_for_function(ALL_THUMBS_LOADED)
    cards = _cards(page)
    assert cards[0]["key"] == key and cards[0]["patent"] == searcher.catalog.ref(key).patent_id
    assert page.is_visible("#query-preview")
    assert errors == []


def test_an_empty_query_and_a_broken_file_show_errors(browser_page: Any, search_url: str, tmp_path: Path) -> None:
    page, errors = browser_page
    page.goto(search_url + "/")
    page.eval_on_selector("#query", "q => q.removeAttribute('required')")
    page.click("#search-button")
    assert "Type what the design looks like" in page.inner_text("#status")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    page.set_input_files("#drawing", str(broken))
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Search failed')")
    assert "could not read the image" in page.inner_text("#status")
    assert page.locator("#results .card").count() == 0



def _wait_results(page: Any) -> None:
    page.wait_for_selector("#results .card")
    page.wait_for_function(ALL_THUMBS_LOADED)


def test_a_search_in_the_address_runs_and_filters_go_into_it(browser_page: Any, search_url: str,
                                                              searcher: Any) -> None:
    page, errors = browser_page
    query = "a shoe with laces"
    page.goto(search_url + "/?q=a+shoe+with+laces&k=5")
    _wait_results(page)
    assert page.input_value("#query") == query and page.input_value("#k") == "5"
    assert [c["key"] for c in _cards(page)] == [h.key for h in searcher.search_text(query, k=5)]
    page.wait_for_function("() => document.querySelectorAll('#f-uspc option').length > 2")
    uspc = searcher.facets()["uspc"][1]["value"]
    page.select_option("#f-uspc", uspc)
    page.wait_for_function(f"() => location.search.includes('uspc={uspc}')")
    page.wait_for_function(f"() => document.getElementById('status').textContent.includes('uspc {uspc}')")
    _wait_results(page)
    expected = searcher.search_text(query, k=5, where=SearchFilter(uspc=uspc))
    cards = _cards(page)
    assert [c["key"] for c in cards] == [h.key for h in expected] and expected
    assert all(f"class {uspc}" in c["facts"] for c in cards)
    shared = page.url
    assert "q=a+shoe+with+laces" in shared and "k=5" in shared
    page.goto("about:blank")
    page.goto(shared)  # the shared link gives the same page
    _wait_results(page)
    assert [c["key"] for c in _cards(page)] == [h.key for h in expected]
    page.wait_for_function("() => document.querySelectorAll('#f-uspc option').length > 2")
    assert page.input_value("#f-uspc") == uspc
    assert errors == []


def test_clicking_a_result_opens_its_patent(browser_page: Any, search_url: str, searcher: Any) -> None:
    page, errors = browser_page
    page.goto(search_url + "/?q=a+wheel&k=5")
    _wait_results(page)
    first = _cards(page)[0]
    page.click("#results .card .thumb")
    page.wait_for_selector("#patent", state="visible")
    page.wait_for_function("() => { const imgs = [...document.querySelectorAll('#patent-views img')];"
                           " return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }")
    catalog = searcher.catalog
    meta = catalog.meta(first["key"])
    views = [k for k in catalog.keys() if catalog.ref(k).patent_id == first["patent"]]
    shown = page.eval_on_selector_all("#patent-views figure", "fs => fs.map(f => f.dataset.key)")
    assert sorted(shown) == sorted(views)
    assert first["patent"] in page.inner_text("#patent-title") and meta["title"] in page.inner_text("#patent-title")
    assert page.inner_text("#patent-claim") == meta["claim"]
    facts = page.inner_text("#patent-facts")
    assert meta["grant_date"] in facts and meta["uspc"] in facts and meta["locarno"] in facts
    link = page.get_attribute("#patent-link", "href")
    assert link == f"https://patents.google.com/patent/USD{int(first['patent'][3:])}S1"
    assert "open=" + first["key"] in page.url
    opened = page.url
    page.click("#patent-close")
    assert page.is_hidden("#patent") and "open=" not in page.url
    page.goto(opened)  # a shared link to an opened patent opens it
    page.wait_for_selector("#patent", state="visible")
    page.wait_for_function(f"() => document.getElementById('patent-title').textContent.includes('{first['patent']}')")
    assert errors == []
