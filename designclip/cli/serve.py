"""`designclip serve`: the search page and JSON API over one release's index (or a grown index), on uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from typing import Any

import uvicorn

from designclip.cli.http_guards import TOKEN_ENV, Limits, header_deadline_protocol, search_token
from designclip.cli.search_app import build_app

log = logging.getLogger(__name__)
PUBLISHED_ENV = "DESIGNCLIP_SEARCH_PUBLISHED_ON"  # where the port is reachable from (compose: the host address)


class SearchServer:
    """uvicorn on a socket bound now (port 0 picks a free one: server_port); serve_forever() blocks until
    shutdown() (another thread) or Ctrl-C (main thread); the stdlib server's names, for callers and tests."""

    def __init__(self, app: Any, host: str, port: int, limits: Limits) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.server_port = int(self.socket.getsockname()[1])
        self.socket.listen(2048)  # connections wait in the backlog until the loop runs
        config = uvicorn.Config(app, http=header_deadline_protocol(limits.header_timeout_s), lifespan="off",
                                log_config=None, access_log=False, limit_concurrency=limits.connections,
                                backlog=2048, timeout_keep_alive=limits.keep_alive_s, timeout_graceful_shutdown=5,
                                server_header=False)
        self.uvicorn = uvicorn.Server(config)
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        try:
            self.uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self, timeout: float = 30.0) -> None:
        self.uvicorn.should_exit = True
        self._stopped.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()


def make_server(searcher: Any, catalog: Any, host: str = "127.0.0.1", port: int = 0, release: str | None = None,
                limits: Limits | None = None, token: str | None = None) -> SearchServer:
    """The search server (not started: call serve_forever); `token` makes every route require it."""
    limits = limits or Limits()
    return SearchServer(build_app(searcher, catalog, release, limits, token), host, port, limits)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token: `--host` (or, in a container, the address the port is
    published on, DESIGNCLIP_SEARCH_PUBLISHED_ON) must be loopback unless DESIGNCLIP_SEARCH_TOKEN is set."""
    reachable = os.environ.get(PUBLISHED_ENV, "").strip() or host
    if token is None and not is_loopback(reachable):
        raise ValueError(f"the search page would be reachable from other machines ({reachable}) without a token: "
                         f"set {TOKEN_ENV} to a long random string (the page and API then require it), or serve on "
                         "127.0.0.1 (the default)")


def serve(data_root: str, release: str | None, model: str, pretrained: str | None = None, host: str = "127.0.0.1",
          port: int = 8765, device: str | None = None, index: str | None = None, limits: Limits | None = None) -> None:
    """Open the release's searcher (or the grown index's, `index`) and serve the page until Ctrl-C (blocking; what
    `designclip serve` runs)."""
    from designclip.pipeline.index.grown_search import open_any_searcher

    token = search_token()
    check_exposure(host, token)
    searcher = open_any_searcher(data_root, release, index, model, pretrained, device=device)
    label = release or f"@{index}"
    server = make_server(searcher, searcher.catalog, host, port, label, limits, token)
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    what = f"release {release}" if release else f"grown index {index}"
    needs = f"; it needs the token: open http://{shown}:{server.server_port}/?token=... once" if token else ""
    print(f"Design search of {what} ({searcher.size} views, model {searcher.encoder.tag}) at "
          f"http://{shown}:{server.server_port}/  (Ctrl-C stops{needs})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
