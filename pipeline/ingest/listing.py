"""Which weekly grant archives a source publishes between two dates: BDSS directory pages or the ODP API."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from typing import Any

import requests
from designclip.pipeline.ingest.archives import WeeklyArchive, latest_revisions, parse_archive_name
from designclip.pipeline.ingest.download import API_HOSTS, MAX_REDIRECTS, DownloadOptions, api_key_from, backoff_delay

log = logging.getLogger(__name__)

BDSS_BASE = "https://bulkdata.uspto.gov"
ODP_BASE = "https://api.uspto.gov"
ODP_HOSTS = API_HOSTS
ODP_PRODUCT = "PTGRDT"
BDSS_YEAR_DIR = "/data/patent/grant/redbook/{year}/"
ODP_PRODUCT_PATH = "/api/v1/datasets/products/{product}"
MAX_ODP_PAGES = 1000
_KEY_REFUSED = "the Open Data Portal refused the API key; check USPTO_API_KEY"


class ListingError(Exception):
    """The source could not be listed; the message names the URL (never the key) and what to do."""


# -- BDSS --------------------------------------------------------------------------------------------


def list_bdss(
    start: dt.date,
    end: dt.date,
    base_url: str = BDSS_BASE,
    session: requests.Session | None = None,
    *,
    options: DownloadOptions | None = None,
) -> list[WeeklyArchive]:
    """Latest revision of every weekly archive in [start, end] found on the yearly directory pages."""
    _check_range(start, end)
    base = base_url.rstrip("/")
    found: list[WeeklyArchive] = []
    tried: list[str] = []
    with _session_scope(session) as sess:
        for year in range(start.year, end.year + 1):
            dir_url = base + BDSS_YEAR_DIR.format(year=year)
            tried.append(dir_url)
            if base.startswith("file:"):
                names = _local_dir_names(dir_url)
            else:
                names = _http_dir_names(sess, dir_url, options or DownloadOptions())
            found += _archives_from(((n, dir_url + n, None) for n in names), start, end, "bdss")
    result = latest_revisions(found)
    log.info("BDSS %s: %d weekly archive(s) between %s and %s", base, len(result), start, end)
    _check_found(result, start, end, tried, "a BDSS mirror has data/patent/grant/redbook/YEAR/I*.tar")
    return result


def _local_dir_names(dir_url: str) -> list[str]:
    """Entries of a file:// year folder; a missing folder means nothing was published that year."""
    path = urllib.request.url2pathname(urllib.parse.urlsplit(dir_url).path)
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        log.info("no folder %s; no archives that year", dir_url)
        return []


def _http_dir_names(sess: requests.Session, dir_url: str, options: DownloadOptions) -> list[str]:
    """File names linked from an autoindex page; a 404 means nothing was published that year."""
    resp = _get(sess, dir_url, options=options)
    if resp.status_code == 404:
        log.info("no directory %s; no archives that year", dir_url)
        return []
    if resp.status_code != 200:
        raise ListingError(f"listing {dir_url} failed with HTTP {resp.status_code}; check --base-url")
    return link_names(resp.text)


class _LinkCollector(HTMLParser):
    """Collect every <a href> on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag.lower() == "a":
            self.hrefs += [v for k, v in attrs if k.lower() == "href" and v]


def link_names(page: str) -> list[str]:
    """Last path segment of each link on a directory page, unquoted, without duplicates."""
    parser = _LinkCollector()
    parser.feed(page)
    names: list[str] = []
    for href in parser.hrefs:
        path = urllib.parse.urlsplit(href).path
        if not path or path.endswith("/"):
            continue
        name = urllib.parse.unquote(path.rsplit("/", 1)[-1])
        if name not in names:
            names.append(name)
    return names


# -- ODP ---------------------------------------------------------------------------------------------


def list_odp(
    start: dt.date,
    end: dt.date,
    base_url: str = ODP_BASE,
    api_key: str | None = None,
    session: requests.Session | None = None,
    page_size: int = 100,
    *,
    product: str = ODP_PRODUCT,
    options: DownloadOptions | None = None,
) -> list[WeeklyArchive]:
    """Latest revision of every weekly archive in [start, end] from the ODP product's file bag, all pages."""
    _check_range(start, end)
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    base = base_url.rstrip("/")
    key = api_key_from(api_key)
    if not key and urllib.parse.urlsplit(base).hostname in ODP_HOSTS:
        raise ListingError(
            "the Open Data Portal needs an API key: set USPTO_API_KEY "
            "(or pass api_key) before listing from api.uspto.gov"
        )
    url = base + ODP_PRODUCT_PATH.format(product=product)
    api_host = urllib.parse.urlsplit(base).netloc.lower() or None
    found: list[WeeklyArchive] = []
    with _session_scope(session) as sess:
        for files in _odp_pages(sess, url, key, start, end, page_size, options or DownloadOptions()):
            entries = ((f.get("fileName"), f.get("fileDownloadURI"), f.get("fileSize")) for f in files)
            found += _archives_from(
                ((n, urllib.parse.urljoin(base + "/", u), _int_or_none(s)) for n, u, s in entries if n and u),
                start,
                end,
                "odp",
                api_host,
            )
    result = latest_revisions(found)
    log.info("ODP %s: %d weekly archive(s) between %s and %s", base, len(result), start, end)
    _check_found(result, start, end, [url], f"the Open Data Portal lists product {product} at {ODP_BASE}")
    return result


def _odp_pages(
    sess: requests.Session,
    url: str,
    key: str | None,
    start: dt.date,
    end: dt.date,
    page_size: int,
    options: DownloadOptions,
) -> Iterator[list[dict[str, Any]]]:
    """Yield file bags page by page until a short page; stop if the server ignores the offset."""
    headers = {"X-API-KEY": key} if key else {}
    previous: list[Any] | None = None
    for page in range(MAX_ODP_PAGES):
        params = {
            "fileDataFromDate": start.isoformat(),
            "fileDataToDate": end.isoformat(),
            "includeFiles": "true",
            "offset": str(page * page_size),
            "limit": str(page_size),
        }
        shown = f"{url}?{urllib.parse.urlencode(params)}"
        resp = _get(sess, url, params=params, headers=headers, options=options, shown=shown)
        files = _odp_files(resp, shown)
        names = [f.get("fileName") for f in files]
        if files and names == previous:
            log.warning("ODP %s returned the same page twice; it ignores offset, stopping", url)
            return
        yield files
        if len(files) < page_size:
            return
        previous = names
    raise ListingError(f"listing {url} did not end after {MAX_ODP_PAGES} pages; raise page_size")


def _odp_files(resp: requests.Response, shown: str) -> list[dict[str, Any]]:
    """The fileDataBag of the first product, with the key-refused and bad-answer cases made explicit."""
    if resp.status_code in (401, 403):
        raise ListingError(f"HTTP {resp.status_code} from {shown}: {_KEY_REFUSED}")
    if resp.status_code == 404:
        raise ListingError(f"{shown} answered 404; check --base-url (the ODP product may have moved)")
    if resp.status_code != 200:
        raise ListingError(f"listing {shown} failed with HTTP {resp.status_code}; try again later")
    try:
        body = resp.json()
    except ValueError:
        raise ListingError(f"{shown} did not answer JSON; check --base-url") from None
    products = body.get("bulkDataProductBag") if isinstance(body, dict) else None
    if not products:
        return []
    bag = (products[0].get("productFileBag") or {}).get("fileDataBag") or []
    return [f for f in bag if isinstance(f, dict)]


# -- shared ------------------------------------------------------------------------------------------


def _archives_from(
    entries: Iterable[tuple[str, str, int | None]], start: dt.date, end: dt.date, source: str,
    api_host: str | None = None,
) -> list[WeeklyArchive]:
    """(name, url, size) triples -> archives whose names are weekly grant archives within [start, end]."""
    archives = []
    for name, url, size in entries:
        parsed = parse_archive_name(name)
        if parsed is None:
            continue
        week, revision = parsed
        if start <= week <= end:
            archives.append(WeeklyArchive(week, name, url, size, revision, source, api_host))
    return archives


def _get(
    sess: requests.Session,
    url: str,
    *,
    options: DownloadOptions,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    shown: str | None = None,
) -> requests.Response:
    """GET with the download backoff for 429/5xx/connection errors; `shown` is the URL safe for messages."""
    shown = shown or url
    reason = "no attempt made"
    attempts = max(1, options.max_attempts)
    for attempt in range(1, attempts + 1):
        hint = None
        try:
            resp = _get_following(sess, url, params, headers or {}, options.timeout_s)
        except (requests.ConnectionError, requests.Timeout) as exc:
            reason = type(exc).__name__
        else:
            if resp.status_code != 429 and resp.status_code < 500:
                return resp
            reason, hint = f"HTTP {resp.status_code}", resp.headers.get("Retry-After")
        if attempt < attempts:
            delay = backoff_delay(attempt, options, hint)
            log.warning(
                "listing %s: attempt %d/%d failed (%s); retrying in %.1f s",
                shown,
                attempt,
                attempts,
                reason,
                delay,
            )
            time.sleep(delay)
    raise ListingError(
        f"listing {shown} failed after {attempts} attempts ({reason}); "
        "check the network and --base-url, or try again later"
    )


def _get_following(
    sess: requests.Session, url: str, params: dict[str, str] | None, headers: dict[str, str], timeout: float
) -> requests.Response:
    """GET following redirects by hand: the API key goes to the host asked first, never to one it redirects to."""
    host = urllib.parse.urlsplit(url).netloc.lower()
    for _ in range(MAX_REDIRECTS + 1):
        same_host = urllib.parse.urlsplit(url).netloc.lower() == host
        # None removes the key even if the caller's session carries one.
        hop_headers = {**headers, **({} if same_host else {"X-API-KEY": None})}
        resp = sess.get(url, params=params, headers=hop_headers, timeout=timeout, allow_redirects=False)
        location = resp.headers.get("Location")
        if not resp.is_redirect or not location:
            return resp
        resp.close()
        url, params = urllib.parse.urljoin(resp.url, location), None
    raise ListingError(f"more than {MAX_REDIRECTS} redirects from {url}; check --base-url")


def _check_found(found: list[WeeklyArchive], start: dt.date, end: dt.date, tried: list[str], layout_hint: str) -> None:
    """Archives are granted every Tuesday: none listed for a range with a past Tuesday means a wrong --base-url."""
    tuesdays = past_tuesdays(start, end)
    if found or not tuesdays:
        return
    raise ListingError(
        f"no weekly archive between {start} and {end} (grant Tuesday{'s' if len(tuesdays) > 1 else ''} "
        f"{tuesdays[0]}{f' .. {tuesdays[-1]}' if len(tuesdays) > 1 else ''}) at {', '.join(tried)}: check --base-url "
        f"({layout_hint})"
    )


def past_tuesdays(start: dt.date, end: dt.date, today: dt.date | None = None) -> list[dt.date]:
    """Grant days (Tuesdays) in [start, end] before today: their archives should be published."""
    last = min(end, (today or dt.date.today()) - dt.timedelta(days=1))
    first = start + dt.timedelta(days=(1 - start.weekday()) % 7)
    return [first + dt.timedelta(weeks=i) for i in range(max(0, (last - first).days // 7 + 1))]


@contextlib.contextmanager
def _session_scope(session: requests.Session | None) -> Iterator[requests.Session]:
    """Use the caller's session, or a private one closed afterwards."""
    if session is not None:
        yield session
        return
    with requests.Session() as own:
        yield own


def _check_range(start: dt.date, end: dt.date) -> None:
    if start > end:
        raise ListingError(f"start {start} is after end {end}; swap the dates")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
