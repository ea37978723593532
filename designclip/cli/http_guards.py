"""What keeps the search server answering under hostile or heavy use: caps, timeouts, bounded work, a token."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlencode

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)
T = TypeVar("T")
TOKEN_ENV = "DESIGNCLIP_SEARCH_TOKEN"
TOKEN_COOKIE = "designclip_search_token"


@dataclass(frozen=True)
class Limits:
    """The server's caps (README: reliability); tests shorten the timeouts."""

    max_upload: int = 20 * 2**20  # bytes of one uploaded drawing (Content-Length checked before reading)
    max_pixels: int = 40_000_000  # declared width x height of an uploaded drawing, checked before decoding
    searches: int = 4  # text searches, thumbnails and views computed at once
    decodes: int = 2  # uploaded drawings decoded and searched at once
    uploads: int = 8  # upload bodies being received at once
    queue_wait_s: float = 20.0  # longest wait for a slot before 503 "busy"
    header_timeout_s: float = 10.0  # a request's line and headers must arrive within this
    body_stall_s: float = 10.0  # no body bytes for this long -> 408
    body_timeout_s: float = 60.0  # the whole body within this -> else 408
    connections: int = 256  # open connections + running requests; beyond: 503 (uvicorn limit_concurrency)
    keep_alive_s: int = 5


class ApiError(Exception):
    """An HTTP error answered as JSON {"error": message}."""

    def __init__(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


class Slots:
    """At most `size` jobs at once in worker threads; a caller that waits longer than `wait_s` gets 503 busy."""

    def __init__(self, name: str, size: int, wait_s: float) -> None:
        self.name, self.wait_s = name, wait_s
        self.limiter = anyio.CapacityLimiter(size)
        self.busiest = 0  # most jobs seen running at once (tests check the bound)

    async def acquire(self) -> None:
        try:
            with anyio.fail_after(self.wait_s):
                await self.limiter.acquire()
        except TimeoutError:
            raise ApiError(HTTPStatus.SERVICE_UNAVAILABLE, f"the server is busy ({self.name}): try again shortly",
                           {"Retry-After": "5"}) from None
        self.busiest = max(self.busiest, int(self.limiter.borrowed_tokens))

    def release(self) -> None:
        self.limiter.release()

    async def run(self, fn: Callable[[], T]) -> T:
        """fn() in a worker thread once a slot is free."""
        await self.acquire()
        try:
            return await anyio.to_thread.run_sync(fn, abandon_on_cancel=False)
        finally:
            self.release()


async def read_body(request: Request, limits: Limits) -> bytes:
    """The request body, refused when over the cap (413, before reading when Content-Length says so), without a
    Content-Length (411) or when it stalls or takes too long (408)."""
    try:
        length = int(request.headers.get("content-length", "-1"))
    except ValueError:
        length = -1
    if length < 0:
        raise ApiError(HTTPStatus.LENGTH_REQUIRED, "send the drawing as the request body with a Content-Length")
    if length > limits.max_upload:
        raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       f"drawing of {length} bytes: the limit is {limits.max_upload // 2**20} MiB")
    chunks, got = [], 0
    deadline = time.monotonic() + limits.body_timeout_s
    stream = request.stream().__aiter__()
    while True:
        wait = min(limits.body_stall_s, deadline - time.monotonic())
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout=max(wait, 0.001))
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise ApiError(HTTPStatus.REQUEST_TIMEOUT, f"the upload stalled after {got} of {length} bytes: send the "
                           f"whole drawing within {limits.body_timeout_s:.0f} s") from None
        got += len(chunk)
        if got > limits.max_upload:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the limit is {limits.max_upload // 2**20} MiB")
        chunks.append(chunk)
    if got < length:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"body ended after {got} of {length} bytes")
    return b"".join(chunks)


def header_deadline_protocol(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for each request's line and headers (uvicorn has none): a client
    that opens a connection and trickles headers is disconnected instead of holding a slot forever."""

    class HeaderDeadlineProtocol(H11Protocol):
        _timer: asyncio.TimerHandle | None = None
        _waiting_cycle: Any = None

        def _arm(self) -> None:
            self._disarm()
            self._waiting_cycle = self.cycle
            self._timer = self.loop.call_later(timeout_s, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _headers_too_slow(self) -> None:
            self._timer = None
            if self.cycle is self._waiting_cycle and not self.transport.is_closing():
                log.info("closing a connection from %s: no complete request headers within %.0f s", self.client,
                         timeout_s)
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._timer is not None and self.cycle is not self._waiting_cycle:
                self._disarm()  # a request's headers are in

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection gets the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadlineProtocol


def search_token() -> str | None:
    """The token the page and API require (DESIGNCLIP_SEARCH_TOKEN), or None: open to whoever reaches the port."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token and len(token) < 16:
        raise ValueError(f"{TOKEN_ENV} is {len(token)} characters: use at least 16 random ones "
                         "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)")
    return token or None


class TokenGate:
    """ASGI middleware: with a token, every route needs it as `Authorization: Bearer TOKEN`, or the cookie that
    opening the page once as `/?token=TOKEN` sets (HttpOnly, SameSite=Lax; the token then leaves the URL)."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app, self.token = app, token

    def _ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given).encode(), str(self.token).encode())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.token is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        bearer = request.headers.get("authorization", "")
        if self._ok(bearer.removeprefix("Bearer ").strip() if bearer.startswith("Bearer ") else None) or \
                self._ok(request.cookies.get(TOKEN_COOKIE)):
            await self.app(scope, receive, send)
            return
        if request.method == "GET" and self._ok(request.query_params.get("token")):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            response: Any = RedirectResponse(_path_qs(request.url.path, rest), status_code=HTTPStatus.SEE_OTHER)
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="lax", path="/")
        elif request.url.path.startswith(("/api/", "/thumb/", "/view/", "/static/")):
            response = JSONResponse({"error": "this search server needs its token: send `Authorization: Bearer "
                                              "TOKEN` or open the page once as /?token=TOKEN"},
                                    status_code=HTTPStatus.UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
        else:
            response = HTMLResponse("<!doctype html><title>Token needed</title><p>This design search needs its "
                                    "token: open it as <code>/?token=TOKEN</code> (ask whoever runs it).</p>",
                                    status_code=HTTPStatus.UNAUTHORIZED)
        await response(scope, receive, send)


def _path_qs(path: str, items: list[tuple[str, str]]) -> str:
    """A same-site redirect target: the path (always starting with one /) and the query without the token."""
    query = urlencode(items)
    path = "/" + path.lstrip("/")
    return path + ("?" + query if query else "")
