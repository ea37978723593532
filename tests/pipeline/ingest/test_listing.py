"""list_bdss / list_odp against a real HTTP mirror on 127.0.0.1 (and a file:// tree)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
from designclip.pipeline.ingest.download import DownloadOptions
from designclip.pipeline.ingest.listing import ListingError, link_names, list_bdss, list_odp

from tests.fixtures.httpmirror import bdss_path, make_weekly_tar, serve_mirror

KEY = "odp-Key-5a4b3c2d1e"
FAST = DownloadOptions(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=5)
NAMES = ["I20251223.tar", "I20251230.tar", "I20251230_r1.tar", "I20260106.tar", "I20260113.tar"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Five archive files over two years (one week republished as _r1) plus files that are not archives."""
    mirror_root = tmp_path / "mirror"
    for i, name in enumerate(NAMES):
        make_weekly_tar(mirror_root, name, {f"{name[:9]}/DESIGN/x{i}.ZIP": b"PK" + bytes(i)})
    year_dir = bdss_path(mirror_root, NAMES[0]).parent
    (year_dir / "README.txt").write_text("not an archive")
    (year_dir / "I20251223.tar.md5").write_text("0" * 32)
    return mirror_root


def names(archives: list[Any]) -> list[str]:
    return [a.name for a in archives]


def test_bdss_picks_latest_revision_across_years(root: Path) -> None:
    with serve_mirror(root) as mirror:
        archives = list_bdss(dt.date(2024, 6, 1), dt.date(2026, 1, 10), base_url=mirror.base_url + "/")
        dirs = mirror.paths()
    assert names(archives) == ["I20251223.tar", "I20251230_r1.tar", "I20260106.tar"]
    assert dirs == [f"/data/patent/grant/redbook/{y}/" for y in (2024, 2025, 2026)]  # 2024: 404, fine
    r1 = archives[1]
    assert (r1.week, r1.revision, r1.size, r1.source) == (dt.date(2025, 12, 30), 1, None, "bdss")
    assert r1.url == f"{mirror.base_url}/data/patent/grant/redbook/2025/I20251230_r1.tar"


def test_bdss_filters_by_date_range(root: Path) -> None:
    with serve_mirror(root) as mirror:
        assert names(list_bdss(dt.date(2025, 12, 24), dt.date(2025, 12, 31), mirror.base_url)) == [
            "I20251230_r1.tar"
        ]
        assert list_bdss(dt.date(2025, 12, 24), dt.date(2025, 12, 29), mirror.base_url) == []


def test_bdss_file_base(root: Path) -> None:
    archives = list_bdss(dt.date(2023, 1, 1), dt.date(2026, 12, 31), base_url=root.as_uri())
    assert names(archives) == ["I20251223.tar", "I20251230_r1.tar", "I20260106.tar", "I20260113.tar"]
    assert archives[0].url == bdss_path(root, "I20251223.tar").as_uri()


def test_bdss_unreachable_host_is_a_listing_error(tmp_path: Path) -> None:
    with serve_mirror(tmp_path) as mirror:
        dead = mirror.base_url
    with pytest.raises(ListingError, match="failed after 2 attempts.*--base-url"):
        list_bdss(dt.date(2025, 1, 1), dt.date(2025, 2, 1), base_url=dead, options=FAST)


def test_link_names_ignores_sort_and_parent_links() -> None:
    page = (
        '<a href="?C=N;O=D">Name</a><a href="../">Parent</a><a href="sub/">sub/</a>'
        '<a href="I20250107.tar">x</a><a href="/abs/I20250114%5Fr1.tar">y</a>'
        '<a href="I20250107.tar">x</a>'
    )
    assert link_names(page) == ["I20250107.tar", "I20250114_r1.tar"]


def test_odp_paginates_and_takes_sizes_from_listing(root: Path) -> None:
    with serve_mirror(root, api_key=KEY) as mirror:
        archives = list_odp(
            dt.date(2025, 12, 1), dt.date(2026, 1, 31), base_url=mirror.base_url, api_key=KEY, page_size=2
        )
        listing = [r for r in mirror.requests if r.path.startswith("/api/v1/datasets/products/PTGRDT")]
    assert [f"offset={o}&" in r.path for o, r in zip((0, 2, 4), listing, strict=True)] == [True] * 3
    assert all("limit=2" in r.path and "includeFiles=true" in r.path for r in listing)
    assert "fileDataFromDate=2025-12-01" in listing[0].path and "fileDataToDate=2026-01-31" in listing[0].path
    assert names(archives) == ["I20251223.tar", "I20251230_r1.tar", "I20260106.tar", "I20260113.tar"]
    for a in archives:
        assert a.source == "odp" and a.size == bdss_path(root, a.name).stat().st_size
        assert a.url == f"{mirror.base_url}/odp-download/{a.name}"


def test_odp_exact_page_multiple_stops_on_empty_page(root: Path) -> None:
    with serve_mirror(root, api_key=KEY) as mirror:
        archives = list_odp(dt.date(2025, 12, 1), dt.date(2026, 1, 10), mirror.base_url, KEY, page_size=2)
        assert len(mirror.paths()) == 3  # 2 + 2 + 0 files
    assert names(archives) == ["I20251223.tar", "I20251230_r1.tar", "I20260106.tar"]


def test_odp_key_from_environment(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USPTO_API_KEY", KEY)
    with serve_mirror(root, api_key=KEY) as mirror:
        archives = list_odp(dt.date(2026, 1, 1), dt.date(2026, 1, 31), base_url=mirror.base_url)
    assert names(archives) == ["I20260106.tar", "I20260113.tar"]


def test_odp_missing_key_is_refused(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USPTO_API_KEY", raising=False)
    with serve_mirror(root, api_key=KEY) as mirror, pytest.raises(ListingError, match="USPTO_API_KEY"):
        list_odp(dt.date(2025, 12, 1), dt.date(2026, 1, 31), base_url=mirror.base_url)


def test_odp_wrong_key_never_appears_in_logs_or_errors(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-Key-77777"
    with serve_mirror(root, api_key=KEY) as mirror, pytest.raises(ListingError) as info:
        list_odp(dt.date(2025, 12, 1), dt.date(2026, 1, 31), base_url=mirror.base_url, api_key=wrong)
    text = f"{info.value!s} {info.value!r}"
    assert "refused the API key" in text and "USPTO_API_KEY" in text and mirror.base_url in text
    assert wrong not in text and wrong not in caplog.text


class _NoNetwork(requests.Session):
    """A session that fails the test if anything tries to send a request."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        raise AssertionError("no request expected")


def test_odp_real_host_without_key_fails_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USPTO_API_KEY", raising=False)
    with pytest.raises(ListingError, match="set USPTO_API_KEY"):
        list_odp(dt.date(2025, 1, 1), dt.date(2025, 2, 1), session=_NoNetwork())


def test_reversed_dates_are_rejected() -> None:
    with pytest.raises(ListingError, match="after end"):
        list_bdss(dt.date(2025, 2, 1), dt.date(2025, 1, 1), session=_NoNetwork())


def test_a_range_with_grant_tuesdays_but_no_archive_names_the_urls_tried(root: Path, tmp_path: Path) -> None:
    missing = (tmp_path / "typo").as_uri()
    with pytest.raises(ListingError, match=r"no weekly archive between 2025-12-01 and 2025-12-20 .*typo/data/patent"):
        list_bdss(dt.date(2025, 12, 1), dt.date(2025, 12, 20), base_url=missing)
    with serve_mirror(root, api_key=KEY) as mirror:
        with pytest.raises(ListingError, match=rf"at {mirror.base_url}/mirror/data/patent/grant/redbook/2025/: check"):
            list_bdss(dt.date(2025, 12, 1), dt.date(2025, 12, 20), base_url=mirror.base_url + "/mirror")  # 404s
        with pytest.raises(ListingError, match=r"Tuesdays 2025-11-04 \.\. 2025-11-25\) at http.*PTGRDT: check"):
            list_odp(dt.date(2025, 11, 1), dt.date(2025, 11, 30), base_url=mirror.base_url, api_key=KEY)


def test_tuesdays_not_yet_past_may_have_no_archive(root: Path) -> None:
    from designclip.pipeline.ingest.listing import past_tuesdays

    today = dt.date.today()
    assert list_bdss(today, today + dt.timedelta(days=30), base_url=root.as_uri()) == []
    assert past_tuesdays(dt.date(2025, 12, 1), dt.date(2025, 12, 31), today=dt.date(2025, 12, 16)) == [
        dt.date(2025, 12, 2), dt.date(2025, 12, 9)]
    assert past_tuesdays(dt.date(2025, 12, 3), dt.date(2025, 12, 8), today=dt.date(2026, 1, 1)) == []
