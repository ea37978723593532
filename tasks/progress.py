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


def _in_prefect_run() -> bool:
    """Artifacts only inside a flow or task run (outside one Prefect would start a temporary server)."""
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


class _Progress:
    """Shared by the progress callbacks: throttled log lines and a Prefect progress artifact (inside runs only)."""

    def __init__(self, label: str, logger: logging.Logger | logging.LoggerAdapter, key: str, description: str,
                 every_s: float) -> None:
        self.label, self.log, self.every_s = label, logger, every_s
        self.key, self.description = key, description
        self.started = time.monotonic()
        self.last_log = 0.0
        self.artifact_id = None
        self.artifact_tried = False

    def _artifact(self) -> None:
        """Create the progress artifact at the first report (a unit found done never shows an empty bar)."""
        self.artifact_tried = True
        if _in_prefect_run():
            try:
                self.artifact_id = create_progress_artifact(0.0, key=artifact_key(self.key),
                                                            description=self.description)
            except Exception:  # noqa: BLE001 - a UI hiccup must never fail the work
                self.artifact_id = None

    def _due(self, finished: bool) -> float | None:
        """Seconds since the start when a line is due now (always at the end), else None."""
        now = time.monotonic()
        if not finished and now - self.last_log < self.every_s:
            return None
        self.last_log = now
        return now - self.started

    def _show(self, done: float, total: float | None) -> None:
        if not self.artifact_tried and total:
            self._artifact()
        if self.artifact_id is not None and total:
            try:
                update_progress_artifact(self.artifact_id, min(100.0, 100.0 * done / total))
            except Exception:  # noqa: BLE001 - a UI hiccup must never fail the work
                self.artifact_id = None


def artifact_key(*parts: str) -> str:
    """Lowercase ASCII letters, digits and single dashes only: what Prefect accepts as an artifact key."""
    raw = "-".join(parts).lower()
    return "-".join(filter(None, "".join(c if c.isascii() and c.isalnum() else "-" for c in raw).split("-")))


class ByteProgress(_Progress):
    """Callback for `download_archive`: throttled log lines and a progress artifact keyed by the archive."""

    def __init__(self, label: str, logger: logging.Logger | logging.LoggerAdapter, every_s: float = 5.0) -> None:
        super().__init__(label, logger, f"download-{label}", f"Downloading {label}", every_s)

    def __call__(self, done: int, total: int | None) -> None:
        elapsed = self._due(total is not None and done >= total)
        if elapsed is None:
            return
        self.log.info("%s: %s", self.label, format_progress(done, total, elapsed))
        self._show(done, total)


class CountProgress(_Progress):
    """Progress of a countable unit (patents of a week): throttled log lines and a Prefect progress artifact."""

    def __init__(self, label: str, total: int | None, logger: logging.Logger | logging.LoggerAdapter,
                 unit: str = "patents", every_s: float = 5.0) -> None:
        super().__init__(label, logger, f"progress-{label}", f"{label}: {unit} done", every_s)
        self.total, self.unit = total, unit

    def __call__(self, done: int, total: int | None = None, *, extra: str = "") -> None:
        """A `designclip.pipeline.common.stage.Progress`: (done, total); a given total replaces the first one."""
        self.total = total if total is not None else self.total
        elapsed = self._due(bool(self.total) and done >= self.total)
        if elapsed is None:
            return
        rate = done / elapsed if elapsed > 0 else 0.0
        if not self.total:  # unknown total: a count and a rate, no bar
            self.log.info("%s: %d %s (%.1f/s)%s", self.label, done, self.unit, rate, extra)
            return
        eta = f", ETA {int((self.total - done) / rate)}s" if rate > 0 and done < self.total else ""
        self.log.info("%s: %d/%d %s (%.1f/s%s)%s", self.label, done, self.total, self.unit, rate, eta, extra)
        self._show(done, self.total)
