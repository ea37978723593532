"""Show long work twice: a terminal line (bytes, rate, ETA) and a Prefect progress artifact in the UI."""

from __future__ import annotations

import logging
import time

from prefect.artifacts import create_progress_artifact, update_progress_artifact


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def format_progress(done: int, total: int | None, elapsed_s: float) -> str:
    """'1.2 GiB / 4.0 GiB (30%), 45.3 MiB/s, ETA 1m02s' (total unknown: no percentage, no ETA)."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    parts = [_human(done) + (f" / {_human(total)} ({100 * done / total:.0f}%)" if total else "")]
    parts.append(f"{_human(rate)}/s")
    if total and rate > 0 and done < total:
        eta = int((total - done) / rate)
        parts.append(f"ETA {eta // 60}m{eta % 60:02d}s")
    return ", ".join(parts)


class ByteProgress:
    """Callback for `download_archive`: throttled log lines and a progress artifact keyed by the archive."""

    def __init__(self, label: str, logger: logging.Logger | logging.LoggerAdapter, every_s: float = 5.0) -> None:
        self.label, self.log, self.every_s = label, logger, every_s
        self.started = time.monotonic()
        self.last_log = 0.0
        self.artifact_id = None
        key = "download-" + "".join(c if c.isalnum() else "-" for c in label.lower())
        try:
            self.artifact_id = create_progress_artifact(0.0, key=key, description=f"Downloading {label}")
        except Exception:  # noqa: BLE001 - outside a flow run there is no UI to update
            self.artifact_id = None

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self.last_log < self.every_s:
            return
        self.last_log = now
        self.log.info("%s: %s", self.label, format_progress(done, total, now - self.started))
        if self.artifact_id is not None and total:
            try:
                update_progress_artifact(self.artifact_id, min(100.0, 100.0 * done / total))
            except Exception:  # noqa: BLE001 - a UI hiccup must never fail a download
                self.artifact_id = None
