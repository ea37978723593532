"""The search server against hostile clients (real uvicorn on 127.0.0.1, raw sockets): a pixel bomb is refused from
its header, stalled uploads and trickled headers time out, work is bounded, the token gate holds, compose publishes
on loopback only."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from designclip.cli.http_guards import TOKEN_COOKIE, Limits
from designclip.cli.serve import check_exposure, is_loopback, make_server

SHORT = Limits(header_timeout_s=1.0, body_stall_s=1.0, body_timeout_s=4.0, queue_wait_s=0.5, searches=2, decodes=1)
TOKEN = "t0ken-for-the-search-tests-0123"


def _start(searcher: Any, limits: Limits = SHORT, token: str | None = None) -> tuple[Any, threading.Thread, str]:
    server = make_server(searcher, searcher.catalog, host="127.0.0.1", port=0, release="v1", limits=limits,
                         token=token)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="module")
def guarded(searcher: Any) -> Iterator[tuple[str, int]]:
    server, thread, url = _start(searcher)
    yield url, server.server_port
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _request(url: str, method: str = "GET", body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def pixel_bomb_png(width: int = 16_000, height: int = 11_000) -> bytes:
    """A valid 1-bit PNG of width x height white-on-black pixels: ~25 KB on the wire, 176 MP when decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class RssPeak:
    """The highest resident memory of this process (the server runs in it) while the block runs, sampled."""

    def __enter__(self) -> RssPeak:
        self.start = self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_16000_by_11000_png_is_refused_from_its_header(guarded: tuple[str, int]) -> None:
    bomb = pixel_bomb_png()
    assert len(bomb) < 100_000
    with RssPeak() as rss:
        start = time.monotonic()
        status, _, body = _request(guarded[0] + "/api/search-image?k=3", "POST", bomb, {"Content-Type": "image/png"})
        took = time.monotonic() - start
    assert status == 413, body
    assert "16000x11000 pixels" in json.loads(body)["error"] and "limit is 40 MP" in json.loads(body)["error"]
    assert took < 2.0 and rss.peak - rss.start < 60, (took, rss.peak - rss.start)  # decoding would take ~700 MB


def _raw(port: int, data: bytes, wait_s: float) -> tuple[bytes, float]:
    """Send `data` on a fresh connection, then read until the server answers or closes (or `wait_s` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as conn:
        conn.sendall(data)
        start, got = time.monotonic(), b""
        try:
            while chunk := conn.recv(65536):
                got += chunk
        except TimeoutError:
            pass
        return got, time.monotonic() - start


def test_a_stalled_upload_times_out(guarded: tuple[str, int]) -> None:
    head = (b"POST /api/search-image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            b"Content-Length: 100000\r\n\r\n")
    answer, took = _raw(guarded[1], head + b"\x89PNG\r\n\x1a\n", wait_s=10)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"the upload stalled after 8 of 100000 bytes" in answer and took < 5


def test_trickled_headers_are_cut_off(guarded: tuple[str, int]) -> None:
    answer, took = _raw(guarded[1], b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", wait_s=10)
    assert answer == b"" and took < 5  # closed without an answer after the header deadline (1 s here)
    status, _, _ = _request(guarded[0] + "/api/info")
    assert status == 200


def test_an_oversized_body_is_refused_unread_and_the_connection_closed(guarded: tuple[str, int]) -> None:
    head = (b"POST /api/search-image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999999\r\n\r\n")
    answer, took = _raw(guarded[1], head, wait_s=10)
    assert answer.startswith(b"HTTP/1.1 413") and b"the limit is 20 MiB" in answer and took < 5


class SlowSearcher:
    """The real searcher, each text search taking 0.3 s and counting how many run at once."""

    def __init__(self, searcher: Any) -> None:
        self._searcher, self.running, self.most = searcher, 0, 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._searcher, name)

    def search_text(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.3)
            return self._searcher.search_text(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1


def test_searches_run_a_bounded_number_at_once_and_overflow_is_503(searcher: Any) -> None:
    slow = SlowSearcher(searcher)
    server, thread, url = _start(slow, Limits(searches=2, queue_wait_s=0.7))  # type: ignore[arg-type]
    try:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda i: _request(f"{url}/api/search?q=chair+{i}&k=2"), range(12)))
        statuses = [a[0] for a in answers]
        assert slow.most == 2  # never more than the bound, though 12 came at once
        assert statuses.count(200) >= 4 and set(statuses) <= {200, 503}
        busy = [a for a in answers if a[0] == 503]
        assert busy and busy[0][1]["Retry-After"] == "5" and "busy" in json.loads(busy[0][2])["error"]
        assert _request(f"{url}/api/search?q=chair&k=2")[0] == 200  # and it recovers
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_with_a_token_every_route_needs_it(searcher: Any) -> None:
    server, thread, url = _start(searcher, token=TOKEN)
    try:
        for path in ("/api/info", "/api/search?q=chair", "/static/app.js", f"/thumb/{searcher.catalog.keys()[0]}.png"):
            status, _, body = _request(url + path)
            assert status == 401 and "needs its token" in json.loads(body)["error"], path
        status, _, body = _request(url + "/")
        assert status == 401 and b"/?token=TOKEN" in body
        assert _request(url + "/api/info", headers={"Authorization": "Bearer wrong-token-wrong-token"})[0] == 401
        status, _, body = _request(url + "/api/info", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and json.loads(body)["release"] == "v1"
        # the page opened once with ?token= sets the cookie and drops the token from the address
        conn = socket.create_connection(("127.0.0.1", server.server_port), timeout=10)
        conn.sendall(f"GET /?token={TOKEN}&q=chair HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        conn.close()
        head = answer.split(b"\r\n\r\n", 1)[0].decode().lower()
        assert head.startswith("http/1.1 303") and "location: /?q=chair" in head
        assert f"set-cookie: {TOKEN_COOKIE}={TOKEN.lower()}" in head and "httponly" in head
        status, _, body = _request(url + "/", headers={"Cookie": f"{TOKEN_COOKIE}={TOKEN}"})
        assert status == 200 and b'id="query"' in body
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_serving_beyond_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    monkeypatch.delenv("DESIGNCLIP_SEARCH_PUBLISHED_ON", raising=False)
    check_exposure("127.0.0.1", None)
    with pytest.raises(ValueError, match="without a token: set DESIGNCLIP_SEARCH_TOKEN"):
        check_exposure("0.0.0.0", None)
    check_exposure("0.0.0.0", TOKEN)
    monkeypatch.setenv("DESIGNCLIP_SEARCH_PUBLISHED_ON", "127.0.0.1")  # compose: --host 0.0.0.0 in the container
    check_exposure("0.0.0.0", None)
    monkeypatch.setenv("DESIGNCLIP_SEARCH_PUBLISHED_ON", "0.0.0.0")
    with pytest.raises(ValueError, match="DESIGNCLIP_SEARCH_TOKEN"):
        check_exposure("0.0.0.0", None)


def test_a_short_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from designclip.cli.http_guards import search_token

    monkeypatch.setenv("DESIGNCLIP_SEARCH_TOKEN", "secret")
    with pytest.raises(ValueError, match="at least 16"):
        search_token()
    monkeypatch.setenv("DESIGNCLIP_SEARCH_TOKEN", TOKEN)
    assert search_token() == TOKEN


def test_compose_publishes_the_search_port_on_loopback_unless_told_and_passes_the_token() -> None:
    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    search = compose["services"]["search"]
    assert search["ports"] == ["${DESIGNCLIP_SEARCH_BIND:-127.0.0.1}:8765:8765"]
    env = search["environment"]
    assert env["DESIGNCLIP_SEARCH_TOKEN"] == "${DESIGNCLIP_SEARCH_TOKEN:-}"
    assert env["DESIGNCLIP_SEARCH_PUBLISHED_ON"] == "${DESIGNCLIP_SEARCH_BIND:-127.0.0.1}"  # serve refuses 0.0.0.0


def test_a_png_over_pillows_own_limit_is_413_too(guarded: tuple[str, int]) -> None:
    status, _, body = _request(guarded[0] + "/api/search-image", "POST", pixel_bomb_png(20_000, 10_000))
    assert status == 413 and "the limit is 40 MP" in json.loads(body)["error"]
