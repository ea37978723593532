"""`designclip serve`: a small local search page and JSON API over one release's index (stdlib http.server)."""

from __future__ import annotations

import functools
import io
import json
import logging
import re
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from designclip.pipeline.common.contact_sheet import thumbnail

log = logging.getLogger(__name__)

MAX_UPLOAD = 20 * 2**20  # a drawing larger than this is not a drawing
THUMB_PX = 256
_STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
           "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
           "/static/style.css": ("style.css", "text/css; charset=utf-8")}
# KEY, or RELEASE/KEY (a grown index's keys; the page sends the slash as %2F)
_VIEW_PATH = re.compile(r"^/(thumb|view)/((?:[A-Za-z0-9][A-Za-z0-9._+-]{0,63}(?:/|%2F|%2f))?"
                        r"[A-Za-z0-9][A-Za-z0-9_-]{0,127})\.png$")
_CSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'"


class ApiError(Exception):
    """An HTTP error answered as JSON {"error": message}."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def web_file(name: str) -> bytes:
    """A file of the bundled page (designclip/web), read from the installed package."""
    return resources.files("designclip").joinpath("web", name).read_bytes()


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ApiError(HTTPStatus.BAD_REQUEST, f"per_patent={value!r}: use true or false")


def _k(value: str | None) -> int:
    try:
        return int(value) if value not in (None, "") else 10
    except ValueError:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"k={value!r}: give a whole number of results") from None


class SearchApp:
    """What the handler calls: search, thumbnails (cached) and full views, each raising ApiError for bad input."""

    def __init__(self, searcher: Any, catalog: Any, release: str | None = None) -> None:
        self.searcher, self.catalog = searcher, catalog
        self.release = release or getattr(catalog, "release", None)
        self.thumb = functools.lru_cache(maxsize=1024)(self._thumb)

    def info(self) -> dict[str, Any]:
        return {"release": self.release, **self.searcher.describe()}

    def _answer(self, run: Any, label: str, k: int) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            hits = run()
        except ValueError as err:
            raise ApiError(HTTPStatus.BAD_REQUEST, str(err)) from err
        return {"query": label, "k": k, "ms": round(1000 * (time.perf_counter() - start), 1),
                "hits": [h.to_dict() for h in hits]}

    def search_text(self, params: dict[str, list[str]]) -> dict[str, Any]:
        query = (params.get("q") or [""])[0]
        k, per_patent = _k((params.get("k") or [None])[0]), _bool((params.get("per_patent") or [None])[0], True)
        return self._answer(lambda: self.searcher.search_text(query, k=k, per_patent=per_patent), query, k)

    def search_image(self, body: bytes, params: dict[str, list[str]]) -> dict[str, Any]:
        k, per_patent = _k((params.get("k") or [None])[0]), _bool((params.get("per_patent") or [None])[0], True)
        name = (params.get("name") or ["drawing"])[0][:200]
        return self._answer(lambda: self.searcher.search_image(body, k=k, per_patent=per_patent), name, k)

    def view(self, key: str) -> bytes:
        if key not in self.catalog:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no view {key!r} in release {self.release}")
        return self.catalog.png(key)

    def _thumb(self, key: str) -> bytes:
        small = thumbnail(self.view(key), key, cell=THUMB_PX).image
        buf = io.BytesIO()
        small.save(buf, format="PNG", optimize=True)
        return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    """Routes: / and /static/*, /api/info, /api/search, POST /api/search-image, /thumb/KEY.png, /view/KEY.png."""

    app: SearchApp
    server_version = "designclip-search"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", _CSP)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj: Any) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _route(self, fn: Any) -> None:
        try:
            fn()
        except ApiError as err:
            self._json(err.status, {"error": str(err)})
        except Exception as err:  # noqa: BLE001 - a request must get an answer, the server must keep running
            log.exception("%s %s failed", self.command, self.path)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(err).__name__}: {err}"})

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._route(self._get)

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        self._route(self._post)

    def _get(self) -> None:
        url = urlsplit(self.path)
        if url.path in _STATIC:
            name, content_type = _STATIC[url.path]
            self._send(HTTPStatus.OK, web_file(name), content_type)
            return
        if url.path == "/api/info":
            self._json(HTTPStatus.OK, self.app.info())
            return
        if url.path == "/api/search":
            self._json(HTTPStatus.OK, self.app.search_text(parse_qs(url.query)))
            return
        m = _VIEW_PATH.match(url.path)
        if m is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no such page: {url.path}")
        kind, key = m.group(1), unquote(m.group(2))
        body = self.app.thumb(key) if kind == "thumb" else self.app.view(key)
        self._send(HTTPStatus.OK, body, "image/png", cache="max-age=3600")

    def _post(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/api/search-image":
            self.close_connection = True  # its body stays unread
            raise ApiError(HTTPStatus.NOT_FOUND, f"no such endpoint: POST {url.path}")
        try:
            length = int(self.headers.get("Content-Length") or -1)
        except ValueError:
            length = -1
        if length < 0:
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "send the drawing as the request body with a Content-Length")
        if length > MAX_UPLOAD:
            self.close_connection = True  # the unread body must not be taken for the next request
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           f"drawing of {length} bytes: the limit is {MAX_UPLOAD // 2**20} MiB")
        body = self.rfile.read(length)
        if len(body) < length:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"body ended after {len(body)} of {length} bytes")
        self._json(HTTPStatus.OK, self.app.search_image(body, parse_qs(url.query)))


class SearchServer(ThreadingHTTPServer):
    """Threads per request; a browser dropping a keep-alive connection is routine, not a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            log.debug("connection from %s ended: %s", client_address, exc)
            return
        log.exception("request from %s failed", client_address)


def make_server(searcher: Any, catalog: Any, host: str = "127.0.0.1", port: int = 0,
                release: str | None = None) -> ThreadingHTTPServer:
    """A threaded HTTP server (not started: call serve_forever); port 0 picks a free port (server.server_port)."""
    app = SearchApp(searcher, catalog, release)
    handler = type("SearchHandler", (Handler,), {"app": app})
    return SearchServer((host, port), handler)


def serve(data_root: str, release: str | None, model: str, pretrained: str | None = None, host: str = "127.0.0.1",
          port: int = 8765, device: str | None = None, index: str | None = None) -> None:
    """Open the release's searcher (or the grown index's, `index`) and serve the page until Ctrl-C (blocking; what
    `designclip serve` runs)."""
    from designclip.pipeline.index.grown_search import open_any_searcher

    searcher = open_any_searcher(data_root, release, index, model, pretrained, device=device)
    label = release or f"@{index}"
    server = make_server(searcher, searcher.catalog, host, port, label)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    what = f"release {release}" if release else f"grown index {index}"
    print(f"Design search of {what} ({searcher.size} views, model {searcher.encoder.tag}) at "
          f"http://{shown}:{server.server_port}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
