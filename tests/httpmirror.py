"""A real HTTP server on 127.0.0.1 that mimics the BDSS mirror and the ODP API, with injectable faults."""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

from designclip.pipeline.ingest.mirror import build_patent_zip, write_tar
from requests.structures import CaseInsensitiveDict

log = logging.getLogger(__name__)

REDBOOK_DIR = "data/patent/grant/redbook"
SAMPLE_PATENTS = Path(__file__).resolve().parents[1] / "designclip" / "sample" / "patents"
ODP_LISTING_PATH = "/api/v1/datasets/products/PTGRDT"
# The mirror's own idea of an archive name, kept independent of designclip.pipeline.ingest.archives on purpose.
_ARCHIVE_RE = re.compile(r"^I(\d{8})(?:_r\d+)?\.(?:tar|zip|ZIP)$")
HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Error</title></head>"
    b"<body><h1>Error</h1><p>Service temporarily unavailable.</p></body></html>\n"
)
_SEND_CHUNK = 64 * 1024


@dataclass
class FaultPlan:
    """Per-file-name misbehaviour, applied to GETs of the archive bytes (direct and signed URLs)."""

    status_then_ok: dict[str, list[int]] = field(default_factory=dict)
    always_status: dict[str, int] = field(default_factory=dict)
    cut_after_bytes: dict[str, int] = field(default_factory=dict)
    html_instead: set[str] = field(default_factory=set)
    ignore_range: set[str] = field(default_factory=set)
    retry_after: str | None = "0"


class MirrorRequest(NamedTuple):
    """One request as the server saw it; unpacks as (method, path, headers)."""

    method: str
    path: str
    headers: CaseInsensitiveDict[str]


def bdss_path(root_dir: Path, name: str) -> Path:
    """Where an archive named `I20210105.tar` lives in a BDSS-layout folder."""
    m = _ARCHIVE_RE.match(name)
    if not m:
        raise ValueError(f"not a weekly archive name: {name}")
    return root_dir / REDBOOK_DIR / m.group(1)[:4] / name


def make_weekly_tar(root_dir: Path, name: str, members: dict[str, bytes]) -> Path:
    """Write a real tar at its BDSS place holding `members` (archive path -> bytes); returns its path."""
    return write_tar(bdss_path(root_dir, name), members)


def make_sample_week(root_dir: Path, name: str, doc_ids: list[str] | None = None) -> Path:
    """A weekly tar built from the sample patents of that week (or `doc_ids`), at its BDSS place."""
    stem = name.split("_")[0].split(".")[0]
    if doc_ids is None:
        doc_ids = sorted(p.name for p in SAMPLE_PATENTS.iterdir() if p.name.endswith(f"-{stem[1:]}"))
    members = {f"{stem}/DESIGN/{doc}.ZIP": build_patent_zip(SAMPLE_PATENTS / doc) for doc in doc_ids}
    return make_weekly_tar(root_dir, name, members)


class Mirror:
    """A running mirror: its base URL, the requests it received, and a stop() that frees the port."""

    def __init__(self, root_dir: Path, faults: FaultPlan | None = None, api_key: str | None = None) -> None:
        self.root_dir = Path(root_dir)
        self.faults = faults or FaultPlan()
        self.api_key = api_key
        self.requests: list[MirrorRequest] = []
        self.signed_key_seen: list[bool] = []
        self._lock = threading.Lock()
        self._pending_status = {k: list(v) for k, v in self.faults.status_then_ok.items()}
        self._cut_done: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True

    def start(self) -> Mirror:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket; idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def record(self, method: str, path: str, headers: Any) -> None:
        with self._lock:
            self.requests.append(MirrorRequest(method, path, CaseInsensitiveDict(dict(headers.items()))))

    def paths(self, method: str = "GET") -> list[str]:
        """Request paths (with query) seen for one method, in order; handy for assertions."""
        with self._lock:
            return [r.path for r in self.requests if r.method == method]

    def next_fault_status(self, name: str) -> int | None:
        """The status a faulty file answers this time, or None to serve it normally."""
        with self._lock:
            if name in self.faults.always_status:
                return self.faults.always_status[name]
            pending = self._pending_status.get(name)
            if pending:
                return pending.pop(0)
        return None

    def take_cut(self, name: str) -> int | None:
        """Byte count after which this GET is cut; only the first GET of a file is cut."""
        with self._lock:
            if name in self.faults.cut_after_bytes and name not in self._cut_done:
                self._cut_done.add(name)
                return self.faults.cut_after_bytes[name]
        return None

    def find_archive(self, name: str) -> Path | None:
        try:
            path = bdss_path(self.root_dir, name)
        except ValueError:
            return None
        return path if path.is_file() else None

    def archives_between(self, start: dt.date, end: dt.date) -> list[Path]:
        """Every archive file (all revisions) whose week lies in [start, end], sorted by name."""
        found = []
        for path in sorted((self.root_dir / REDBOOK_DIR).glob("*/*")):
            m = _ARCHIVE_RE.match(path.name)
            if m and start <= dt.datetime.strptime(m.group(1), "%Y%m%d").date() <= end:
                found.append(path)
        return found


@contextlib.contextmanager
def serve_mirror(
    root_dir: Path, faults: FaultPlan | None = None, api_key: str | None = None
) -> Iterator[Mirror]:
    """Run a mirror of `root_dir` for the duration of a with-block."""
    mirror = Mirror(root_dir, faults, api_key).start()
    try:
        yield mirror
    finally:
        mirror.stop()


def _make_handler(mirror: Mirror) -> type[BaseHTTPRequestHandler]:
    """Bind a handler class to one mirror (http.server builds a handler per request)."""

    class Handler(_MirrorHandler):
        pass

    Handler.mirror = mirror
    return Handler


class _MirrorHandler(BaseHTTPRequestHandler):
    """Routes: static BDSS tree, ODP listing JSON, ODP download redirect, signed file URL."""

    protocol_version = "HTTP/1.1"
    timeout = 10
    mirror: Mirror

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("mirror: " + format, *args)

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch(head=True)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch(head=False)

    def _dispatch(self, head: bool) -> None:
        self.mirror.record(self.command, self.path, self.headers)
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        query = urllib.parse.parse_qs(parsed.query)
        try:
            if path == ODP_LISTING_PATH:
                self._odp_listing(query, head)
            elif path.startswith("/odp-download/"):
                self._odp_download(path.rsplit("/", 1)[-1], head)
            elif path.startswith("/signed/"):
                self._signed(path.rsplit("/", 1)[-1], head)
            else:
                self._static(path, head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- helpers -------------------------------------------------------------------------------------

    def _send_bytes(self, status: int, body: bytes, content_type: str, head: bool, **extra: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in extra.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_status(self, status: int, head: bool) -> None:
        extra = {}
        if status == 429 and self.mirror.faults.retry_after is not None:
            extra["Retry_After"] = self.mirror.faults.retry_after
        body = json.dumps({"code": status, "message": self.responses.get(status, ("",))[0]}).encode()
        self._send_bytes(status, body, "application/json", head, **extra)

    def _key_ok(self, head: bool) -> bool:
        """Enforce the API key like the ODP gateway: 401 when missing, 403 when wrong."""
        if self.mirror.api_key is None:
            return True
        got = self.headers.get("X-API-KEY")
        if got == self.mirror.api_key:
            return True
        self._send_status(401 if got is None else 403, head)
        return False

    # -- routes --------------------------------------------------------------------------------------

    def _static(self, path: str, head: bool) -> None:
        rel = path.lstrip("/")
        target = (self.mirror.root_dir / rel).resolve()
        if self.mirror.root_dir.resolve() not in (target, *target.parents):
            self._send_status(404, head)
        elif path.endswith("/") and target.is_dir():
            self._autoindex(path, target, head)
        elif target.is_file():
            self._serve_file(target, head)
        else:
            self._send_status(404, head)

    def _autoindex(self, url_path: str, directory: Path, head: bool) -> None:
        """An Apache-style index page: sort links, a parent link, then one link per entry."""
        rows = ['<a href="?C=N;O=D">Name</a>', '<a href="../">Parent Directory</a>']
        for entry in sorted(directory.iterdir()):
            name = entry.name + ("/" if entry.is_dir() else "")
            rows.append(f'<a href="{urllib.parse.quote(name)}">{html.escape(name)}</a>')
        title = f"Index of {html.escape(url_path)}"
        body = f"<html><head><title>{title}</title></head><body><h1>{title}</h1><pre>{'<br>'.join(rows)}"
        body += "</pre></body></html>\n"
        self._send_bytes(200, body.encode(), "text/html;charset=UTF-8", head)

    def _serve_file(self, path: Path, head: bool) -> None:
        """Serve an archive honouring faults and `Range: bytes=N-` / `bytes=N-M`."""
        name = path.name
        if not head:
            status = self.mirror.next_fault_status(name)
            if status is not None:
                self._send_status(status, head)
                return
            if name in self.mirror.faults.html_instead:
                self._send_bytes(200, HTML_ERROR_PAGE, "text/html; charset=utf-8", head)
                return
        size = path.stat().st_size
        start, end = 0, size - 1
        byte_range = _parse_range(self.headers.get("Range"))
        if name in self.mirror.faults.ignore_range:
            byte_range = None
        if byte_range is not None:
            start, req_end = byte_range
            if start >= size:
                self._send_bytes(416, b"", "text/plain", head, Content_Range=f"bytes */{size}")
                return
            end = min(req_end, size - 1) if req_end is not None else size - 1
        length = end - start + 1
        self.send_response(206 if byte_range is not None else 200)
        self.send_header("Content-Type", "application/x-tar" if name.endswith(".tar") else "application/zip")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if byte_range is not None:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head:
            return
        cut = self.mirror.take_cut(name)
        self._copy(path, start, length if cut is None else min(cut, length))
        if cut is not None:
            self.close_connection = True
            self.wfile.flush()

    def _copy(self, path: Path, start: int, count: int) -> None:
        with path.open("rb") as f:
            f.seek(start)
            while count > 0:
                chunk = f.read(min(_SEND_CHUNK, count))
                if not chunk:
                    break
                self.wfile.write(chunk)
                count -= len(chunk)

    def _odp_listing(self, query: dict[str, list[str]], head: bool) -> None:
        """The PTGRDT product with its file bag, filtered by date and paginated by offset/limit."""
        if not self._key_ok(head):
            return
        try:
            start = dt.date.fromisoformat(query.get("fileDataFromDate", ["1900-01-01"])[0])
            end = dt.date.fromisoformat(query.get("fileDataToDate", ["2999-12-31"])[0])
            offset = int(query.get("offset", ["0"])[0])
            limit = int(query.get("limit", ["100"])[0])
        except ValueError:
            self._send_status(400, head)
            return
        files = self.mirror.archives_between(start, end)
        page = files[offset : offset + limit]
        bag = [self._odp_file(p) for p in page]
        product = {
            "productIdentifier": "PTGRDT",
            "productFileTotalQuantity": len(files),
            "productFileBag": {"count": len(bag), "fileDataBag": bag},
        }
        body = json.dumps({"count": 1, "bulkDataProductBag": [product]}).encode()
        self._send_bytes(200, body, "application/json", head)

    def _odp_file(self, path: Path) -> dict[str, Any]:
        week = dt.datetime.strptime(path.name[1:9], "%Y%m%d").date().isoformat()
        return {
            "fileName": path.name,
            "fileSize": path.stat().st_size,
            "fileDataFromDate": week,
            "fileDataToDate": week,
            "fileTypeText": "Data",
            "fileDownloadURI": f"{self.mirror.base_url}/odp-download/{urllib.parse.quote(path.name)}",
        }

    def _odp_download(self, name: str, head: bool) -> None:
        """The API's download URI: checks the key, then redirects to a short-lived signed URL."""
        if not self._key_ok(head):
            return
        if self.mirror.find_archive(name) is None:
            self._send_status(404, head)
            return
        location = f"{self.mirror.base_url}/signed/{urllib.parse.quote(name)}?sig=abc"
        self._send_bytes(302, b"", "text/plain", head, Location=location)

    def _signed(self, name: str, head: bool) -> None:
        """The storage URL the API redirects to; remembers whether a key leaked to it."""
        with self.mirror._lock:
            self.mirror.signed_key_seen.append("X-API-KEY" in self.headers)
        path = self.mirror.find_archive(name)
        if path is None:
            self._send_status(404, head)
        else:
            self._serve_file(path, head)


def _parse_range(value: str | None) -> tuple[int, int | None] | None:
    """`bytes=N-` -> (N, None); `bytes=N-M` -> (N, M); anything else is ignored like many servers do."""
    if not value:
        return None
    m = re.fullmatch(r"\s*bytes=(\d+)-(\d*)\s*", value)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)) if m.group(2) else None
