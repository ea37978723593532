"""A BDSS-layout folder served over HTTP on 127.0.0.1 at a chosen speed: downloads that take time, offline.

For benchmarks and tests of the streaming DAG (a week's download should take about as long as its render) and for
trying `designclip run --base-url` against something that behaves like a remote mirror.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

_CHUNK = 16 * 1024


class _ThrottledHandler(SimpleHTTPRequestHandler):
    """Static files (directory pages included) sent at `bytes_per_s`, quietly."""

    bytes_per_s: float = 0.0

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def copyfile(self, source: BinaryIO, outputfile: BinaryIO) -> None:  # type: ignore[override]
        if self.bytes_per_s <= 0:
            shutil.copyfileobj(source, outputfile)
            return
        started, sent = time.monotonic(), 0
        while chunk := source.read(_CHUNK):
            sent += len(chunk)
            ahead = sent / self.bytes_per_s - (time.monotonic() - started)
            if ahead > 0:  # wait before sending: the last byte arrives no sooner than size / rate
                time.sleep(ahead)
            outputfile.write(chunk)


@contextlib.contextmanager
def serve_folder(root: Path, bytes_per_s: float = 0.0) -> Iterator[str]:
    """Serve `root` on a free 127.0.0.1 port for the with-block; yields the base URL (0 = full speed)."""
    handler = type("Handler", (_ThrottledHandler,), {"bytes_per_s": float(bytes_per_s)})
    with serve_handler(functools.partial(handler, directory=str(root))) as url:
        yield url


@contextlib.contextmanager
def serve_handler(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """Any request handler on a free 127.0.0.1 port for the with-block (threads; stopped and closed after)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
