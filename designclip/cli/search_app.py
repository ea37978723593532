"""The search page and its JSON API as an ASGI app (FastAPI): routes over a searcher, every heavy step bounded."""

from __future__ import annotations

import functools
import io
import logging
import re
import time
from http import HTTPStatus
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from designclip.cli.http_guards import ApiError, Limits, Slots, TokenGate, read_body
from designclip.pipeline.common.contact_sheet import thumbnail
from designclip.pipeline.index.filters import SearchFilter
from designclip.pipeline.index.patent_pages import PatentPages
from designclip.pipeline.index.search import ImageTooLarge

log = logging.getLogger(__name__)

THUMB_PX = 256
_STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
           "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
           "/static/style.css": ("style.css", "text/css; charset=utf-8")}
# KEY, or RELEASE/KEY (a grown index's keys; the page sends the slash as %2F, which arrives decoded)
_VIEW_KEY = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._+-]{0,63}/)?[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_CSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'"
_UNREAD_BODY = (HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.LENGTH_REQUIRED, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


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


def _filter(params: Any) -> SearchFilter:
    try:
        return SearchFilter.parse(params)
    except ValueError as err:
        raise ApiError(HTTPStatus.BAD_REQUEST, str(err)) from err


class SearchApp:
    """What the routes call: search, patent pages, thumbnails (cached) and views; ApiError for bad input."""

    def __init__(self, searcher: Any, catalog: Any, release: str | None, limits: Limits) -> None:
        self.searcher, self.catalog, self.limits = searcher, catalog, limits
        self.release = release or getattr(catalog, "release", None)
        self.thumb = functools.lru_cache(maxsize=1024)(self._thumb)
        self.pages = PatentPages(catalog)
        self.work = Slots("searches", limits.searches, limits.queue_wait_s)
        self.decodes = Slots("drawings", limits.decodes, limits.queue_wait_s)
        self.uploads = Slots("uploads", limits.uploads, limits.queue_wait_s)

    def info(self) -> dict[str, Any]:
        return {"release": self.release, **self.searcher.describe(), "facets": self.searcher.facets(),
                "limits": {"max_upload_mib": self.limits.max_upload // 2**20,
                           "max_pixels_mp": self.limits.max_pixels // 10**6}}

    def _answer(self, run: Any, label: str, k: int, where: SearchFilter) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            hits = run()
        except ImageTooLarge as err:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(err)) from err
        except ValueError as err:
            raise ApiError(HTTPStatus.BAD_REQUEST, str(err)) from err
        return {"query": label, "k": k, "filters": where.to_dict(),
                "ms": round(1000 * (time.perf_counter() - start), 1), "hits": [h.to_dict() for h in hits]}

    def search_text(self, params: Any) -> dict[str, Any]:
        query = params.get("q") or ""
        k, per_patent, where = _k(params.get("k")), _bool(params.get("per_patent"), True), _filter(params)
        return self._answer(lambda: self.searcher.search_text(query, k=k, per_patent=per_patent, where=where),
                            query, k, where)

    def search_image(self, body: bytes, params: Any) -> dict[str, Any]:
        k, per_patent, where = _k(params.get("k")), _bool(params.get("per_patent"), True), _filter(params)
        name = (params.get("name") or "drawing")[:200]
        return self._answer(lambda: self.searcher.search_image(body, k=k, per_patent=per_patent, where=where,
                                                               max_pixels=self.limits.max_pixels), name, k, where)

    def check_key(self, key: str) -> str:
        if not _VIEW_KEY.match(key) or key not in self.catalog:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no view {key!r} in release {self.release}")
        return key

    def view(self, key: str) -> bytes:
        return self.catalog.png(self.check_key(key))

    def patent(self, key: str) -> dict[str, Any]:
        return self.pages.page(self.check_key(key))

    def _thumb(self, key: str) -> bytes:
        small = thumbnail(self.view(key), key, cell=THUMB_PX).image
        buf = io.BytesIO()
        small.save(buf, format="PNG", optimize=True)
        return buf.getvalue()


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(obj, status_code=status, headers={**_HEADERS, **(headers or {})})


def build_app(searcher: Any, catalog: Any, release: str | None = None, limits: Limits | None = None,
              token: str | None = None) -> Any:
    """The ASGI app: / and /static/*, /api/info, /api/search, POST /api/search-image, /api/patent?key=KEY,
    /thumb/KEY.png, /view/KEY.png; behind the token gate when a token is given."""
    limits = limits or Limits()
    state = SearchApp(searcher, catalog, release, limits)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.search = state

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        closing = {"Connection": "close"} if err.status in _UNREAD_BODY else {}  # its body is not read: no reuse
        return _json({"error": str(err)}, err.status, {**err.headers, **closing})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        message = f"no such page: {request.url.path}" if err.status_code == 404 else str(err.detail)
        return _json({"error": message}, err.status_code)

    @app.exception_handler(Exception)
    async def crash(request: Request, err: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return _json({"error": f"{type(err).__name__}: {err}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def static(path: str) -> Any:
        name, content_type = _STATIC[path]

        async def page() -> Response:
            headers = {**_HEADERS, **({"Content-Security-Policy": _CSP} if content_type.startswith("text/html")
                                      else {})}
            return Response(web_file(name), media_type=content_type, headers=headers)
        return page

    for path in _STATIC:
        app.add_api_route(path, static(path), methods=["GET", "HEAD"], include_in_schema=False)

    @app.get("/api/info")
    async def info() -> JSONResponse:
        return _json(await state.work.run(state.info))

    @app.get("/api/search")
    async def search(request: Request) -> JSONResponse:
        params = request.query_params
        return _json(await state.work.run(lambda: state.search_text(params)))

    @app.get("/api/patent")
    async def patent(request: Request) -> JSONResponse:
        key = request.query_params.get("key") or ""
        return _json(await state.work.run(lambda: state.patent(key)))

    @app.post("/api/search-image")
    async def search_image(request: Request) -> JSONResponse:
        await state.uploads.acquire()
        try:
            body = await read_body(request, limits)
        finally:
            state.uploads.release()
        params = request.query_params
        return _json(await state.decodes.run(lambda: state.search_image(body, params)))

    @app.api_route("/{route:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def image(route: str, request: Request) -> Response:
        kind, _, rest = route.partition("/")
        if request.method not in ("GET", "HEAD") or kind not in ("thumb", "view") or not rest.endswith(".png"):
            raise ApiError(HTTPStatus.NOT_FOUND, f"no such page: {request.method} /{route}")
        key = rest.removesuffix(".png")
        body = await state.work.run(lambda: state.thumb(key) if kind == "thumb" else state.view(key))
        return Response(body, media_type="image/png",
                        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})

    return TokenGate(app, token)
