"""A bounded loopback load test of the search server on the sample release: 200 requests, 16 at a time (searches,
thumbnails, patent pages), p95 under 1 s, memory flat, and the server still answers afterwards."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.cli.test_http_guards import _rss_mib

QUERIES = ("a chair with curved legs", "a shoe with laces", "a wheel", "a lamp", "a bottle", "a napkin with pattern",
           "a phone case", "a table", "a cup with a handle", "a watch face")
REQUESTS, AT_ONCE = 200, 16


def _paths(searcher: Any, n: int) -> list[str]:
    keys = searcher.catalog.keys()
    out = []
    for i in range(n):
        if i % 10 < 6:
            q = urllib.parse.urlencode({"q": f"{QUERIES[i % len(QUERIES)]} {i}", "k": 10})
            out.append(f"/api/search?{q}")
        elif i % 10 < 9:
            out.append(f"/thumb/{keys[(i * 7) % len(keys)]}.png")
        else:
            out.append(f"/api/patent?key={keys[(i * 13) % len(keys)]}")
    return out


def _timed_get(port: int, path: str) -> tuple[int, float]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start
    finally:
        conn.close()


def _run(port: int, paths: list[str]) -> list[tuple[int, float]]:
    with ThreadPoolExecutor(AT_ONCE) as pool:
        return list(pool.map(lambda p: _timed_get(port, p), paths))


def test_200_requests_16_at_a_time(search_url: str, searcher: Any) -> None:
    port = int(search_url.rsplit(":", 1)[1])
    _run(port, _paths(searcher, 48))  # warm: thumbnails cached, threads and buffers allocated
    before = _rss_mib()
    results = _run(port, _paths(searcher, REQUESTS))
    after = _rss_mib()
    statuses = [s for s, _ in results]
    latencies = sorted(t for _, t in results)
    p95 = latencies[int(0.95 * len(latencies)) - 1]
    print(f"{REQUESTS} requests, {AT_ONCE} at a time: p95 {p95:.3f} s, max {latencies[-1]:.3f} s, "
          f"RSS {before:.0f} -> {after:.0f} MiB")
    assert statuses == [200] * REQUESTS, {s: statuses.count(s) for s in set(statuses)}
    assert p95 < 1.0, f"p95 {p95:.3f} s (median {latencies[len(latencies) // 2]:.3f} s)"
    assert after - before < 64, f"memory grew {after - before:.0f} MiB over {REQUESTS} requests"
    status, _ = _timed_get(port, "/api/search?q=a+chair&k=3")
    assert status == 200
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/api/info")
    assert json.loads(conn.getresponse().read())["vectors"] == searcher.size
    conn.close()
