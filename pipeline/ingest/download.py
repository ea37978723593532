"""Fetch one weekly archive into the data folder: resumable, retried, verified, and never fetched twice."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hashlib
import http.client
import logging
import os
import random
import re
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.hostile import archive_problem
from designclip.pipeline.ingest.ledger import DownloadLimitReached, check_limit, record_download
from designclip.storage import layout
from designclip.storage.folder import DataFolder

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]
PROGRESS_INTERVAL_S = 0.2
MAX_REDIRECTS = 5
USER_AGENT = "designclip-pipeline (weekly grant archive download)"
API_HOSTS = frozenset({"api.uspto.gov"})
"""Hosts the X-API-KEY may go to besides the one the listing itself was asked (WeeklyArchive.api_host)."""
_REDIRECTS = (301, 302, 303, 307, 308)
_HASH_CHUNK = 1 << 20
# Failures of the connection itself: the part file is kept and the next attempt resumes with Range.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
    http.client.IncompleteRead,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
)


@dataclass(frozen=True)
class DownloadOptions:
    """How patient a download is; the API key is kept out of repr so it never reaches a log."""

    max_attempts: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    timeout_s: float = 60.0  # connecting (and each listing request)
    stall_timeout_s: float = 60.0  # no byte (or no answer) for this long: the attempt ends, the next resumes
    min_rate_bytes_s: float = 16 * 1024  # slower than this on average over min_rate_window_s: same
    min_rate_window_s: float = 60.0
    max_silent_attempts: int = 2  # attempts in a row without any answer (connect or header timeout): give up sooner
    chunk_bytes: int = 1 << 20
    api_key: str | None = field(default=None, repr=False)
    max_per_year: int | None = None  # downloads of one file per year (the ledger); None: no limit
    min_delay_429_s: float = 0.0  # the least pause after HTTP 429 (the Open Data Portal wants >= 5 s)


@dataclass(frozen=True)
class DownloadResult:
    """What a download produced; `resumed_from` is the byte offset the final transfer started at."""

    rel_path: str
    size: int
    sha256: str
    resumed_from: int
    attempts: int
    skipped: bool


class DownloadError(Exception):
    """A permanent failure: wrong content, wrong size, missing file; retrying will not help."""


class TransientDownloadError(DownloadError):
    """Retries ran out on throttling, server errors or dropped connections; a later run may succeed."""


class _Retry(Exception):
    """Internal: this attempt failed in a way worth another try, maybe with the server's Retry-After."""

    def __init__(self, message: str, retry_after: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after, self.status = retry_after, status


# -- retry timing (shared with designclip.pipeline.ingest.listing) -----------------------------------------------------


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or HTTP-date); None when absent or garbled."""
    if not value or not value.strip():
        return None
    value = value.strip()
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(attempt: int, options: DownloadOptions, retry_after: str | None = None) -> float:
    """Pause after failed attempt `attempt` (1-based): the server's hint, else exponential with jitter."""
    hinted = parse_retry_after(retry_after)
    if hinted is not None:
        return min(hinted, options.backoff_max_s)
    delay = min(options.backoff_base_s * 2 ** (attempt - 1), options.backoff_max_s)
    return min(delay * random.uniform(1.0, 1.1), options.backoff_max_s)


def redact(text: str) -> str:
    """Drop query strings (signed-URL signatures) from a message before it is logged or raised."""
    return re.sub(r"\?[^\s'\")]*", "?…", text)


def api_key_from(explicit: str | None) -> str | None:
    """The key to send to the ODP API: the explicit one, else $USPTO_API_KEY."""
    return explicit or os.environ.get("USPTO_API_KEY") or None


# -- the part file -----------------------------------------------------------------------------------


class _PartFile:
    """The growing `<final>.part` and the running sha256 of exactly the bytes it holds."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sha = hashlib.sha256()
        self.size = 0
        if os.path.exists(path):
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
                    self.sha.update(chunk)
                    self.size += len(chunk)

    def truncate(self) -> None:
        """Start over from byte zero (server ignored Range, or resumed at the wrong offset)."""
        with open(self.path, "wb"):
            pass
        self.sha = hashlib.sha256()
        self.size = 0

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        self.sha = hashlib.sha256()
        self.size = 0

    def head(self, n: int = 1024) -> bytes:
        with open(self.path, "rb") as f:
            return f.read(n)


class _Progress:
    """Throttle progress callbacks to one per PROGRESS_INTERVAL_S, plus a final one."""

    def __init__(self, fn: ProgressFn | None) -> None:
        self.fn = fn
        self.last = 0.0

    def update(self, done: int, total: int | None, final: bool = False) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        if final or now - self.last >= PROGRESS_INTERVAL_S:
            self.last = now
            self.fn(done, total)


@dataclass
class _Job:
    """Everything one download needs, passed around instead of long argument lists."""

    archive: WeeklyArchive
    part: _PartFile
    options: DownloadOptions
    progress: _Progress

    @property
    def label(self) -> str:
        return f"week {self.archive.week}: {self.archive.name}"

    def fail(self, message: str, discard: bool = True) -> DownloadError:
        """A permanent error for this archive; bad bytes are discarded so no later run trusts them."""
        if discard:
            self.part.remove()
        return DownloadError(f"{self.label}: {message}")


# -- public entry point ------------------------------------------------------------------------------


def download_archive(
    archive: WeeklyArchive,
    folder: DataFolder,
    *,
    options: DownloadOptions = DownloadOptions(),
    on_progress: ProgressFn | None = None,
    session: requests.Session | None = None,
    staging_dir: str | None = None,
) -> DownloadResult:
    """Put `archive` at raw/YYYY/<name> with its manifest; a finished archive is never downloaded again."""
    final = layout.raw_archive(archive.week, archive.name)
    done = _already_done(archive, folder, final)
    if done is not None:
        return done
    try:
        check_limit(folder, archive, options.max_per_year)
    except DownloadLimitReached as exc:
        raise DownloadError(str(exc)) from exc
    with _staging(folder, final, archive.name, staging_dir) as part_path:
        job = _Job(archive, _PartFile(part_path), options, _Progress(on_progress))
        if job.part.size:
            log.info("%s: resuming from %d bytes already on disk", job.label, job.part.size)
        (resumed_from, expected), attempts = _fetch_with_retries(job, session)
        _verify(job, expected)
        job.progress.update(job.part.size, expected, final=True)
        size, sha256 = job.part.size, job.part.sha.hexdigest()
        folder.put_file(part_path, final)
    _write_manifest(archive, folder, size, sha256)
    record_download(folder, archive)
    log.info("%s: downloaded %d bytes in %d attempt(s), sha256 %s", job.label, size, attempts, sha256)
    return DownloadResult(final, size, sha256, resumed_from, attempts, skipped=False)


def _already_done(archive: WeeklyArchive, folder: DataFolder, final: str) -> DownloadResult | None:
    """The skip check: a final file with its manifest is done; one without is re-verified and adopted."""
    if not folder.exists(final):
        return None
    manifest = layout.raw_manifest(archive.week, archive.name)
    if folder.exists(manifest):
        try:
            sha256 = str(folder.read_json(manifest).get("sha256", ""))
        except ValueError:
            sha256 = ""
        log.info("week %s: %s already downloaded; skipping", archive.week, archive.name)
        return DownloadResult(final, folder.size(final), sha256, 0, 0, skipped=True)
    return _adopt(archive, folder, final)


def _adopt(archive: WeeklyArchive, folder: DataFolder, final: str) -> DownloadResult | None:
    """A final file without manifest (crash between rename and manifest): keep it only if it checks out."""
    sha, size = hashlib.sha256(), 0
    with folder.open(final, "rb") as f:
        valid = archive_problem(f, _archive_kind(archive.name)) is None
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            sha.update(chunk)
            size += len(chunk)
    if not valid or (archive.size is not None and size != archive.size):
        log.warning(
            "week %s: %s exists without a manifest and fails checks; downloading again",
            archive.week,
            archive.name,
        )
        folder.remove(final)
        return None
    _write_manifest(archive, folder, size, sha.hexdigest())
    log.info("week %s: %s was complete but had no manifest; wrote it", archive.week, archive.name)
    return DownloadResult(final, size, sha.hexdigest(), 0, 0, skipped=True)


@contextlib.contextmanager
def _staging(folder: DataFolder, final: str, name: str, staging_dir: str | None) -> Iterator[str]:
    """Where the `.part` grows: beside the final file when local, else a local staging folder."""
    if folder.is_local:
        folder.makedirs(final.rpartition("/")[0])
        yield folder.path(f"{final}.part")
        return
    if staging_dir:
        os.makedirs(staging_dir, exist_ok=True)
        yield os.path.join(staging_dir, f"{name}.part")
        return
    tmp = tempfile.mkdtemp(prefix="designclip-dl-")
    try:
        yield os.path.join(tmp, f"{name}.part")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_manifest(archive: WeeklyArchive, folder: DataFolder, size: int, sha256: str) -> None:
    """Written last: its presence is what marks the archive as finished."""
    folder.write_json(
        layout.raw_manifest(archive.week, archive.name),
        {
            "name": archive.name,
            "week": archive.week.isoformat(),
            "url": archive.url,
            "size": size,
            "sha256": sha256,
            "source": archive.source,
            "revision": archive.revision,
            "downloaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )


# -- attempts ----------------------------------------------------------------------------------------


def _fetch_with_retries(job: _Job, session: requests.Session | None) -> tuple[tuple[int, int | None], int]:
    """Run attempts until one completes; returns ((resumed_from, expected_size), attempts)."""
    own = session is None
    sess = session or requests.Session()
    reason, attempt, silent = "no attempt made", 0, 0
    try:
        for attempt in range(1, max(1, job.options.max_attempts) + 1):
            try:
                if job.archive.url.startswith("file:"):
                    return _fetch_file(job), attempt
                return _fetch_http(job, sess), attempt
            except _Retry as exc:
                reason, hint, status, silent = str(exc), exc.retry_after, exc.status, 0
            except TRANSIENT_ERRORS as exc:
                reason, hint, status = _transient_reason(exc, job.options), None, None
                # requests' own timeouts come before any answer; a stall mid-body is urllib3's
                silent = silent + 1 if isinstance(exc, requests.exceptions.Timeout) else 0
            if attempt >= job.options.max_attempts or silent >= job.options.max_silent_attempts:
                break
            delay = backoff_delay(attempt, job.options, hint)
            if status == 429:
                delay = max(delay, job.options.min_delay_429_s)
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.1f s",
                job.label,
                attempt,
                job.options.max_attempts,
                reason,
                delay,
            )
            time.sleep(delay)
    finally:
        if own:
            sess.close()
    raise TransientDownloadError(
        f"{job.label}: gave up after {attempt} attempts ({reason}); "
        f"{job.part.size} bytes are kept and the next run resumes from there; try again later"
    )


def _transient_reason(exc: BaseException, options: DownloadOptions) -> str:
    """What went wrong with the connection, in words (a read timeout is a stall)."""
    if isinstance(exc, requests.exceptions.ReadTimeout | urllib3.exceptions.ReadTimeoutError):
        return f"stalled: no data for {options.stall_timeout_s:g} s"
    return redact(f"{type(exc).__name__}: {exc}")


def _fetch_http(job: _Job, sess: requests.Session) -> tuple[int, int | None]:
    """One HTTP attempt from the current part size; returns (resumed_from, expected_size)."""
    offset = job.part.size
    resp = _open(job, sess, offset)
    with contextlib.closing(resp):
        if resp.status_code == 416 and offset:
            return _range_not_satisfiable(job, resp, offset)
        _check_status(job, resp)
        _reject_html_type(job, resp)
        if resp.status_code == 206:
            start, total = _parse_content_range(resp.headers.get("Content-Range"))
            if start != offset:
                job.part.truncate()
                raise _Retry(f"server resumed at byte {start} instead of {offset}; restarting from zero")
        else:
            if offset:
                log.info("%s: server ignored the Range request; restarting from zero", job.label)
                job.part.truncate()
            total = _int_or_none(resp.headers.get("Content-Length"))
        if resp.headers.get("Content-Encoding", "identity").lower() != "identity":
            total = None  # the length is of the encoded body, not of the archive
        resumed_from = job.part.size
        expected = _expected_size(job, total)
        _append(job, _rate_checked(_body_chunks(resp, job.options.chunk_bytes), job.options), expected)
        if total is not None and job.part.size < total:
            raise _Retry(f"connection closed after {job.part.size} of {total} bytes")
        return resumed_from, expected


def _fetch_file(job: _Job) -> tuple[int, int | None]:
    """A file:// URL: copy from the local path with the same resume, size and content checks."""
    src = urllib.request.url2pathname(urllib.parse.urlsplit(job.archive.url).path)
    try:
        total = os.path.getsize(src)
    except FileNotFoundError:
        raise job.fail(
            f"not found at {job.archive.url}; the week may not be published yet", discard=False
        ) from None
    expected = _expected_size(job, total)
    if job.part.size > total:
        job.part.truncate()
    resumed_from = job.part.size
    with open(src, "rb") as f:
        f.seek(resumed_from)
        _append(job, iter(lambda: f.read(job.options.chunk_bytes), b""), expected)
    return resumed_from, expected


def key_allowed(url: str, api_host: str | None) -> bool:
    """The API key goes to the ODP API host or the API the user configured (host:port), never elsewhere."""
    netloc = urllib.parse.urlsplit(url).netloc.lower()
    return netloc in API_HOSTS or (api_host is not None and netloc == api_host.lower())


def _open(job: _Job, sess: requests.Session, offset: int) -> requests.Response:
    """GET following up to MAX_REDIRECTS by hand so the API key goes to the API host only, never beyond."""
    url = job.archive.url
    headers: dict[str, Any] = {"Accept-Encoding": "identity", "User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    key = api_key_from(job.options.api_key) if job.archive.source == "odp" else None
    if key and not key_allowed(url, job.archive.api_host):
        log.warning("%s: the listing names another host (%s) than the API; the API key is not sent there",
                    job.label, urllib.parse.urlsplit(url).netloc)
        key = None
    timeout = (job.options.timeout_s, job.options.stall_timeout_s)  # (connect, no data for this long)
    for hop in range(MAX_REDIRECTS + 1):
        # None removes the header even if the caller's session carries one.
        hop_headers = {**headers, "X-API-KEY": key if hop == 0 and key else None}
        resp = sess.get(url, headers=hop_headers, stream=True, timeout=timeout, allow_redirects=False)
        if resp.status_code not in _REDIRECTS:
            return resp
        location = resp.headers.get("Location")
        resp.close()
        if not location:
            message = f"HTTP {resp.status_code} without a Location from {job.archive.url}"
            raise job.fail(message, discard=False)
        url = urllib.parse.urljoin(url, location)
        log.debug("%s: following redirect to %s", job.label, redact(url))
    raise job.fail(f"more than {MAX_REDIRECTS} redirects from {job.archive.url}", discard=False)


def _body_chunks(resp: requests.Response, size: int) -> Iterator[bytes]:
    """Whatever has arrived, up to `size` at a time, so bytes before a dropped connection are kept."""
    read1 = getattr(resp.raw, "read1", None)
    if read1 is None:  # urllib3 < 2.3
        yield from resp.iter_content(size)
        return
    while data := read1(size):
        yield data


def _rate_checked(chunks: Iterable[bytes], options: DownloadOptions) -> Iterator[bytes]:
    """Pass chunks on, ending the attempt (to resume) when a window of min_rate_window_s is slower than the minimum
    rate: a server dripping a byte now and then never trips the stall timeout but would hold the slot for days."""
    window_start, window_bytes = time.monotonic(), 0
    for chunk in chunks:
        yield chunk
        window_bytes += len(chunk)
        elapsed = time.monotonic() - window_start
        if elapsed >= options.min_rate_window_s:
            if window_bytes / elapsed < options.min_rate_bytes_s:
                raise _Retry(f"too slow: {window_bytes / elapsed:.0f} bytes/s over {elapsed:.0f} s "
                             f"(the minimum is {options.min_rate_bytes_s:.0f})")
            window_start, window_bytes = time.monotonic(), 0


def _check_status(job: _Job, resp: requests.Response) -> None:
    """200/206 pass; 408/429/5xx are retried; other answers are permanent with a hint what to do."""
    status = resp.status_code
    if status in (200, 206):
        return
    if status in (408, 429) or 500 <= status < 600:
        raise _Retry(f"HTTP {status}", resp.headers.get("Retry-After"), status)
    url = job.archive.url
    if status == 404:
        raise job.fail(f"not found at {url}; the week may not be published yet", discard=False)
    if status in (401, 403) and job.archive.source == "odp":
        raise job.fail(
            f"HTTP {status} from {url}: the Open Data Portal refused the API key; check USPTO_API_KEY",
            discard=False,
        )
    raise job.fail(f"HTTP {status} from {url}; check --base-url", discard=False)


def _range_not_satisfiable(job: _Job, resp: requests.Response, offset: int) -> tuple[int, int | None]:
    """416 on resume: the part may already be whole; otherwise start over."""
    total = _content_range_total(resp.headers.get("Content-Range"))
    if total == offset:
        return offset, _expected_size(job, total)
    job.part.truncate()
    raise _Retry(f"server cannot resume at byte {offset} (size {total}); restarting from zero")


def _reject_html_type(job: _Job, resp: requests.Response) -> None:
    if resp.headers.get("Content-Type", "").split(";")[0].strip().lower() == "text/html":
        raise job.fail(_html_message(job.archive))


def _html_message(archive: WeeklyArchive) -> str:
    return f"the server returned an HTML page instead of {archive.name}; check --base-url or the API key"


def _expected_size(job: _Job, announced: int | None) -> int | None:
    """The listing's size when known (and it must agree with the server), else what the server announces."""
    listed = job.archive.size
    if listed is not None and announced is not None and listed != announced:
        raise job.fail(
            f"size mismatch: the listing says {listed} bytes but the server sends {announced}; "
            "the archive may have been republished, list again"
        )
    return listed if listed is not None else announced


def _append(job: _Job, chunks: Iterable[bytes], expected: int | None) -> None:
    """Append chunks to the part, hashing as we go; refuse HTML and bodies longer than expected."""
    part = job.part
    with open(part.path, "ab") as f:
        for chunk in chunks:
            if not chunk:
                continue
            if part.size == 0 and _looks_like_html(chunk):
                raise job.fail(_html_message(job.archive))
            if expected is not None and part.size + len(chunk) > expected:
                raise job.fail(f"size mismatch: received more than the expected {expected} bytes")
            f.write(chunk)
            part.sha.update(chunk)
            part.size += len(chunk)
            job.progress.update(part.size, expected)


def _verify(job: _Job, expected: int | None) -> None:
    """Size, then content: only a whole, real archive of the right kind reaches the final name."""
    part = job.part
    if expected is not None and part.size != expected:
        raise job.fail(f"size mismatch: got {part.size} bytes, expected {expected}")
    if _looks_like_html(part.head()):
        raise job.fail(_html_message(job.archive))
    kind = _archive_kind(job.archive.name)
    with open(part.path, "rb") as f:
        problem = archive_problem(f, kind)
    if problem is not None:
        unverified = " (the server sent no length, so only the archive's own end can tell)" if expected is None else ""
        raise job.fail(
            f"{job.archive.name} is not a valid {kind} archive ({part.size} bytes): {problem}{unverified}; "
            "the source file may be corrupt or the transfer cut, try again later or check --base-url"
        )


# -- content checks ----------------------------------------------------------------------------------


def _looks_like_html(head: bytes) -> bool:
    """Error pages start with `<` (`<!DOCTYPE`, `<html`); tar and zip archives never do."""
    return head.lstrip()[:1] == b"<"


def _archive_kind(name: str) -> str:
    return "zip" if name.lower().endswith(".zip") else "tar"


# -- header parsing ----------------------------------------------------------------------------------


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _parse_content_range(value: str | None) -> tuple[int, int | None]:
    """`bytes 100-199/200` -> (100, 200); a `*` total is unknown."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value or "")
    if not m:
        raise _Retry(f"206 with an unreadable Content-Range {value!r}")
    return int(m.group(1)), None if m.group(2) == "*" else int(m.group(2))


def _content_range_total(value: str | None) -> int | None:
    m = re.search(r"/(\d+)\s*$", value or "")
    return int(m.group(1)) if m else None
