"""The search server's HTTP API against a real server on 127.0.0.1 (urllib / http.client, no mocks)."""

from __future__ import annotations

import http.client
import io
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from PIL import Image


def _get(url: str) -> tuple[int, Any, bytes]:
    """Status, headers (case-insensitive: the server sends lower-case names) and body."""
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _post(url: str, body: bytes, content_type: str = "image/png") -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _raw(search_url: str, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """A request with the path sent exactly as given (urllib would not let `..` through unchanged)."""
    host = urllib.parse.urlsplit(search_url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_page_and_its_static_files(search_url: str) -> None:
    status, headers, body = _get(search_url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    for needle in ('id="query"', 'id="drawing"', 'type="file"', 'id="results"', "/static/app.js", "/static/style.css"):
        assert needle in page
    assert "http://" not in page and "https://" not in page  # no CDN: the page works offline
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for path, kind in (("/static/app.js", "text/javascript"), ("/static/style.css", "text/css")):
        status, headers, body = _get(search_url + path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and body


def test_text_search_api_returns_the_searchers_hits(search_url: str, searcher: Any) -> None:
    query = "a shoe with laces"
    status, headers, body = _get(search_url + "/api/search?" + urllib.parse.urlencode({"q": query, "k": 4}))
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    answer = json.loads(body)
    assert answer["query"] == query and answer["k"] == 4 and answer["ms"] >= 0
    expected = [h.to_dict() for h in searcher.search_text(query, k=4)]
    assert answer["hits"] == expected and len(expected) == 4
    assert set(answer["hits"][0]) == {"rank", "key", "patent_id", "title", "fig", "view", "uspc_class",
                                      "locarno_class", "score", "views", "grant_date"}
    assert answer["hits"][0]["grant_date"].startswith("20")  # from the release manifest (the year filter's field)
    views = json.loads(_get(search_url + "/api/search?q=a+shoe+with+laces&k=6&per_patent=false")[2])["hits"]
    assert [h["key"] for h in views] == [h.key for h in searcher.search_text(query, k=6, per_patent=False)]


def test_drawing_search_api(search_url: str, searcher: Any, distinct_key: str) -> None:
    key = distinct_key
    status, body = _post(search_url + "/api/search-image?k=3", searcher.catalog.png(key))
    assert status == 200
    hits = json.loads(body)["hits"]
    assert hits[0]["key"] == key and hits[0]["score"] == pytest.approx(1.0, abs=1e-3) and len(hits) == 3


@pytest.mark.parametrize(("path", "message"), [
    ("/api/search?q=", "empty query"),
    ("/api/search", "empty query"),
    ("/api/search?q=%20%20", "empty query"),
    ("/api/search?q=chair&k=abc", "whole number"),
    ("/api/search?q=chair&k=0", "ask for 1 to"),
    ("/api/search?q=chair&per_patent=maybe", "per_patent"),
])
def test_bad_text_queries_are_400_with_a_json_error(search_url: str, path: str, message: str) -> None:
    status, headers, body = _get(search_url + path)
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert message in json.loads(body)["error"]


def test_bad_drawings_are_400_with_a_json_error(search_url: str) -> None:
    status, body = _post(search_url + "/api/search-image", b"this is not a drawing")
    assert status == 400 and "could not read the image" in json.loads(body)["error"]
    status, body = _post(search_url + "/api/search-image", b"")
    assert status == 400 and "no image" in json.loads(body)["error"]
    status, body = _raw(search_url, "POST", "/api/search-image")  # no body, no Content-Length
    assert status == 411 and "Content-Length" in json.loads(body)["error"]


def test_thumbnails_and_full_views(search_url: str, searcher: Any) -> None:
    key = searcher.catalog.keys()[0]
    status, headers, body = _get(f"{search_url}/thumb/{key}.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    thumb = Image.open(io.BytesIO(body))
    assert thumb.format == "PNG" and max(thumb.size) <= 256 and min(thumb.size) > 0
    status, headers, body = _get(f"{search_url}/view/{key}.png")
    assert status == 200 and body == searcher.catalog.png(key)


@pytest.mark.parametrize("path", [
    "/thumb/USD0000000_f1.png",  # well-formed, not in the release
    "/thumb/../releases/v1/manifest.png",
    "/thumb/..%2F..%2Fetc%2Fpasswd.png",
    "/thumb/USD0917866_f1.json",
    "/view/%2e%2e.png",
    "/static/../serve.py",
    "/nothing-here",
])
def test_unknown_keys_and_paths_are_404(search_url: str, path: str) -> None:
    status, body = _raw(search_url, "GET", path)
    assert status == 404 and json.loads(body)["error"]


def test_unknown_post_is_404_and_info_describes_the_index(search_url: str, searcher: Any) -> None:
    status, body = _post(search_url + "/api/other", b"x")
    assert status == 404
    status, _, body = _get(search_url + "/api/info")
    info = json.loads(body)
    assert status == 200 and info["release"] == "v1" and info["vectors"] == searcher.size > 0
    assert info["model"] == searcher.encoder.tag


def test_oversized_uploads_are_refused_unread(search_url: str) -> None:
    status, body = _raw(search_url, "POST", "/api/search-image", headers={"Content-Length": str(64 * 2**20)})
    assert status == 413 and "limit" in json.loads(body)["error"]


def test_serve_entry_point_runs_until_interrupted(indexed_v1: dict, tmp_path: Any) -> None:
    """`serve()` (what `designclip serve` calls) in its own process: prints its URL, answers, stops on SIGINT."""
    code = ("import sys; from designclip.cli.serve import serve; "
            "serve(sys.argv[1], sys.argv[2], sys.argv[3], host='127.0.0.1', port=0)")
    errors = tmp_path / "stderr.txt"
    with open(errors, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", code, indexed_v1["data_root"], indexed_v1["release"],
                                 indexed_v1["model"]], stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        assert match, (line, errors.read_text())
        assert "release v1" in line and "views" in line
        status, _, body = _get(match.group(1) + "/api/search?q=a+wheel&k=2")
        assert status == 200 and len(json.loads(body)["hits"]) == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_filters_in_the_api_and_the_values_info_offers(search_url: str, searcher: Any) -> None:
    info = json.loads(_get(search_url + "/api/info")[2])
    assert {f["value"] for f in info["facets"]["uspc"]} == {h["uspc_class"] for h in searcher.meta.values()}
    uspc = info["facets"]["uspc"][1]["value"]
    year = info["facets"]["year"][0]["value"]
    query = urllib.parse.urlencode({"q": "a wheel", "k": 3, "uspc": uspc, "year": year})
    answer = json.loads(_get(f"{search_url}/api/search?{query}")[2])
    assert answer["filters"] == {"uspc": uspc, "year": year} and answer["hits"]
    assert all(h["uspc_class"] == uspc and h["grant_date"].startswith(str(year)) for h in answer["hits"])
    status, _, body = _get(search_url + "/api/search?q=a+wheel&year=last")
    assert status == 400 and "give a grant year" in json.loads(body)["error"]


def test_patent_page_api(search_url: str, searcher: Any) -> None:
    key = searcher.catalog.keys()[3]
    status, _, body = _get(search_url + "/api/patent?" + urllib.parse.urlencode({"key": key}))
    page = json.loads(body)
    patent = searcher.catalog.ref(key).patent_id
    assert status == 200 and page["patent_id"] == patent and key in [v["key"] for v in page["views"]]
    assert page["title"] and page["claim"] and page["grant_date"] and page["uspc_class"]
    assert page["public_url"] == f"https://patents.google.com/patent/USD{int(patent[3:])}S1"
    for bad in ("USD0000000_f1", "../etc/passwd", ""):
        status, _, body = _get(search_url + "/api/patent?" + urllib.parse.urlencode({"key": bad}))
        assert status == 404 and json.loads(body)["error"]
