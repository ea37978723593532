"""The ingest flow: a date range of weekly USPTO grant archives -> patents/figures/sheets/errors tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.class_tables import write_class_tables
from designclip.pipeline.ingest.driver import KEEP_RAW, IngestOptions, finished
from designclip.pipeline.ingest.sources import download_policy
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.tasks.ingest import download_week, ingest_week, list_weeks
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner


class IngestFailed(RuntimeError):
    """Some weeks failed; the others are done and will be skipped on the next run."""


def ingest_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| week | archive | status | patents | figures | sheets | errors | non-design skipped |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['week']} | {r['archive']} | {r['status']} | {r.get('patents', '')} | "
                     f"{r.get('figures', '')} | {r.get('sheets', '')} | {r.get('errors', '')} | "
                     f"{r.get('skipped_not_design', '')} |")
    return "\n".join(lines)


def local_archive(path: str) -> WeeklyArchive:
    """A weekly archive the user already has on disk (I*.tar/zip or the no-images ipgYYMMDD.xml/zip)."""
    from designclip.pipeline.ingest.archives import parse_archive_name

    p = Path(path).resolve()
    parsed = parse_archive_name(p.name)
    if parsed is None and p.name.lower().startswith("ipg") and p.name[3:9].isdigit():
        parsed = (dt.datetime.strptime("20" + p.name[3:9], "%Y%m%d").date(), 0)
    if parsed is None:
        raise ValueError(f"{path}: not a weekly archive name (expected I20210105.tar, I20210105.zip or ipg210105.xml)")
    return WeeklyArchive(week=parsed[0], name=p.name, url=p.as_uri(), source="local")


@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=4), log_prints=True)
def ingest_flow(
    start: dt.date,
    end: dt.date,
    data_root: str = layout.DEFAULT_DATA_ROOT,
    source: str = "bdss",
    base_url: str | None = None,
    max_downloads: int | None = None,
    archives: list[str] | None = None,
    keep_raw: str = KEEP_RAW[0],
    download_limit: int | None = None,
) -> list[dict[str, Any]]:
    """Download and parse every weekly archive granted in [start, end]; finished weeks are skipped.

    keep_raw none (the default) deletes each downloaded archive once its week is ingested (the manifest stays);
    a finished week is not downloaded again. max_downloads: concurrent downloads (default 2; 1 for the Open Data
    Portal, which allows no parallel requests per key); download_limit: downloads of one file per year (default
    none; 20 for the Open Data Portal), counted in a ledger beside each manifest.
    """
    log = get_run_logger()
    if start > end:
        raise ValueError(f"--start {start} is after --end {end}")
    IngestOptions(keep_raw=keep_raw)  # a bad value fails here, before any download
    folder = DataFolder(data_root)
    folder.check_writable()
    write_class_tables(folder)
    if archives:
        weekly = [local_archive(a) for a in archives]
        downloads: dict[str, Any] = {a.name: None for a in weekly}
    else:
        weekly = list_weeks(start, end, source, base_url)
        if not weekly:
            log.warning("no weekly archives between %s and %s at %s", start, end, base_url or source)
        max_downloads, options = download_policy(source, max_downloads, download_limit)
        downloads = {a.name: None if finished(folder, a) else download_week.submit(a, data_root, options, max_downloads)
                     for a in weekly}
    parses = {a.name: ingest_week.submit(a, data_root, downloads[a.name], keep_raw) for a in weekly}
    rows, failed = [], []
    for a in weekly:
        state = parses[a.name].wait() or parses[a.name].state
        row: dict[str, Any] = {"week": a.week.isoformat(), "archive": a.name}
        if state.is_completed():
            result = parses[a.name].result()
            row |= {k: result.stats[k] for k in ("patents", "figures", "sheets", "errors", "skipped_not_design")}
            row["status"] = "skipped (done)" if result.skipped else "done"
        else:
            row["status"] = "failed"
            dl = downloads[a.name]
            culprit = dl.state if dl is not None and dl.state.is_failed() else state
            error = culprit.result(raise_on_failure=False)
            failed.append(str(error) if isinstance(error, BaseException) else f"{a.name}: {culprit.message}")
        rows.append(row)
    create_markdown_artifact(ingest_markdown(rows), key="ingest-summary", description="Ingest by week")
    if failed:
        raise IngestFailed(f"{len(failed)} of {len(weekly)} weeks failed (rerun to retry them):\n" + "\n".join(failed))
    return rows
