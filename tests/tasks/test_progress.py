"""The progress line people read in the terminal while gigabyte archives download."""

from __future__ import annotations

from designclip.tasks.progress import format_progress


def test_progress_shows_bytes_percent_rate_and_eta() -> None:
    line = format_progress(1024**3, 4 * 1024**3, elapsed_s=20.0)
    assert line == "1.0 GiB / 4.0 GiB (25%), 51.2 MiB/s, ETA 1m00s"


def test_progress_without_a_known_total_has_no_eta() -> None:
    assert format_progress(5 * 1024**2, None, elapsed_s=1.0) == "5.0 MiB, 5.0 MiB/s"
