"""What is done, failed or missing, read only from files under the data root (true even after a lost server).

Every stage writes a done marker last and the ingest stage a failure record, so the data root alone says where
each week and each release stands: no Prefect database is read here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from typing import Any

from designclip.storage import layout
from designclip.storage.captions import caption_sets
from designclip.storage.embeddings import release_fingerprint
from designclip.storage.folder import DataFolder
from designclip.storage.tables import finished_weeks, read_marker
from designclip.storage.vocabulary import SPLITS, parse_archive_name

STATES = ("done", "partial", "failed", "missing", "leftovers")
_WEEK_ID = re.compile(r"^I(\d{8})")
_STEP = re.compile(r"^step-(\d{7})$")
_GRANT_WEEKDAY = 1  # USPTO grants are issued on Tuesdays: one archive per Tuesday


def grant_weeks(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every grant Tuesday in [start, end]: the weeks a range should have."""
    first = start + dt.timedelta(days=(_GRANT_WEEKDAY - start.weekday()) % 7)
    return [first + dt.timedelta(weeks=i) for i in range(max(0, (end - first).days // 7 + 1))]


def _week_of(name: str) -> dt.date | None:
    """The week of a file named after it (`I20210105.json`, `I20210105_r1.tar.corrupt`, `ipg210105.xml`)."""
    if m := _WEEK_ID.match(name):
        try:
            return dt.datetime.strptime(m.group(1), "%Y%m%d").date()
        except ValueError:
            return None
    if name.lower().startswith("ipg") and name[3:9].isdigit():
        try:
            return dt.datetime.strptime("20" + name[3:9], "%Y%m%d").date()
        except ValueError:
            return None
    return None


def _read_json(folder: DataFolder, rel: str) -> dict[str, Any] | None:
    """A JSON record, or None when it is absent; an unreadable one is reported, not raised."""
    if not folder.exists(rel):
        return None
    try:
        return folder.read_json(rel)
    except ValueError as exc:
        return {"unreadable": f"{rel}: {exc}"}


def _reasons(counts: dict[str, int] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted((counts or {}).items(), key=lambda kv: (-kv[1], kv[0])))


# ------------------------------------------------------------------------------------------------- weeks


def _raw_archives(folder: DataFolder) -> dict[dt.date, dict[str, list[str]]]:
    """Per week, the raw files by kind: downloaded (manifest written), partial (.part), corrupt (moved aside)."""
    out: dict[dt.date, dict[str, list[str]]] = {}
    for year in folder.ls_dirs("raw"):
        for rel in folder.list(f"raw/{year}"):
            name = rel.rsplit("/", 1)[-1]
            week = _week_of(name)
            if week is None or name.endswith(".json"):
                continue
            kinds = out.setdefault(week, {"downloaded": [], "downloading": [], "corrupt": []})
            if name.endswith(".corrupt"):
                kinds["corrupt"].append(name.removesuffix(".corrupt"))
            elif name.endswith(".part"):
                kinds["downloading"].append(name.removesuffix(".part"))
            elif parse_archive_name(name) is not None and folder.exists(f"{rel}.json"):
                kinds["downloaded"].append(name)
            else:
                kinds["downloading"].append(name)  # a whole file whose manifest is not written yet
    return out


def _failures(folder: DataFolder, stage: str) -> dict[dt.date, dict[str, Any]]:
    out = {}
    for rel in folder.list(f"_failures/{stage}", ".json"):
        week = _week_of(rel.rsplit("/", 1)[-1])
        if week is not None:
            out[week] = _read_json(folder, rel) or {}
    return out


def _ingest(marker: dict[str, Any] | None, failure: dict[str, Any] | None,
            raw: dict[str, list[str]] | None) -> dict[str, Any]:
    """done (marker), failed (failure record newer than any marker), partial (downloaded, not parsed), missing."""
    raw = raw or {"downloaded": [], "downloading": [], "corrupt": []}
    out: dict[str, Any] = {"state": "missing", "archive": None, "error": None, "raw": raw}
    if marker is not None:
        out |= {"state": "done", "archive": marker.get("source_archive"), "patents": marker.get("patents", 0),
                "figures": marker.get("figures", 0), "sheets": marker.get("sheets", 0),
                "errors": marker.get("errors", 0), "errors_by_reason": marker.get("errors_by_reason") or {},
                "skipped_not_design": marker.get("skipped_not_design", 0), "finished_at": marker.get("finished_at")}
        if out["errors"]:
            out["error"] = f"{out['errors']} bad members: {_reasons(out['errors_by_reason'])}"
    if failure is not None and (marker is None or str(failure.get("at", "")) > str(marker.get("finished_at", ""))):
        out |= {"state": "failed", "archive": failure.get("archive") or out["archive"],
                "error": failure.get("error") or failure.get("unreadable") or "failed (no message recorded)",
                "failed_at": failure.get("at")}
        if marker is not None:
            out["note"] = f"the counts are of the earlier archive {marker.get('source_archive')}"
    elif marker is None and (raw["downloaded"] or raw["downloading"]):
        out["state"] = "partial"
        out["note"] = "downloaded, not parsed" if raw["downloaded"] else "download not finished"
    return out


def _render(folder: DataFolder, profile: str, week: dt.date, marker: dict[str, Any] | None,
            failure: dict[str, Any] | None = None) -> dict[str, Any]:
    """done (week marker), failed (failure record newer than any marker), partial (some shards finished), else
    missing; per-view failures are its errors."""
    if marker is not None:
        out = {"state": "done", "shards": len(marker.get("shards", [])), "patents": marker.get("patents", 0),
               "views": marker.get("samples", 0), "flagged": marker.get("flagged", 0),
               "failures": marker.get("failures", 0), "failures_by_reason": marker.get("failures_by_reason") or {},
               "shard_names": list(marker.get("shards", [])), "finished_at": marker.get("finished_at"), "error": None}
    else:
        stats = [s for rel in folder.list(layout.shard_dir(profile, week), ".stats.json")
                 if (s := _read_json(folder, rel)) is not None]
        out = {"state": "partial" if stats else "missing", "shards": len(stats),
               "patents": sum(len(s.get("patents", [])) for s in stats),
               "views": sum(s.get("samples", 0) for s in stats),
               "flagged": sum(s.get("flagged", 0) for s in stats), "failures": sum(s.get("failures", 0) for s in stats),
               "failures_by_reason": dict(sum((Counter(s.get("failures_by_reason") or {}) for s in stats), Counter())),
               "shard_names": [s.get("shard") for s in stats], "finished_at": None, "error": None}
    if out["failures"]:
        out["error"] = f"{out['failures']} views failed: {_reasons(out['failures_by_reason'])}"
    if failure is not None and (marker is None or str(failure.get("at", "")) > str(marker.get("finished_at", ""))):
        out |= {"state": "failed", "failed_at": failure.get("at"),
                "error": failure.get("error") or failure.get("unreadable") or "failed (no message recorded)"}
        if marker is not None:
            out["note"] = "the counts are of an earlier render"
    return out


def _captions(folder: DataFolder, profile: str, caption_set: str, week: dt.date,
              render: dict[str, Any]) -> dict[str, Any]:
    """done when every rendered shard of the week has caption stats, partial when some do (or parts exist)."""
    rel_dir = layout.caption_dir(profile, caption_set, week)
    names = folder.list(rel_dir)
    stats = [s for rel in names if rel.endswith(".stats.json") and (s := _read_json(folder, rel)) is not None]
    parts = [rel for rel in names if ".part" in rel.rsplit("/", 1)[-1]]
    total = render["shards"] if render["state"] == "done" else None
    done = len(stats)
    if total is not None and done >= total:  # a rendered week without views has nothing to caption: done
        state = "done"
    elif done or parts:
        state = "partial"
    else:
        state = "missing"
    failures = [f for s in stats for f in s.get("failure_details") or []]
    out = {"state": state, "shards_done": done, "shards": total, "checkpoint_parts": len(parts),
           "samples": sum(s.get("samples", 0) for s in stats), "captioned": sum(s.get("captioned", 0) for s in stats),
           "failures": sum(s.get("failures", 0) for s in stats), "error": None}
    if failures:
        last = failures[-1]
        out["error"] = f"{len(failures)} captions failed, last {last.get('key')}: {last.get('error')}"
    return out


def _week_status(folder: DataFolder, profile: str, week: dt.date, sets: list[str],
                 raw: dict[str, list[str]] | None, failure: dict[str, Any] | None,
                 render_failure: dict[str, Any] | None = None) -> dict[str, Any]:
    ingest = _ingest(read_marker(folder, "ingest", week), failure, raw)
    render = _render(folder, profile, week, read_marker(folder, layout.render_stage(profile), week), render_failure)
    captions = {s: _captions(folder, profile, s, week, render) for s in sets}
    errors = [(stage, e) for stage, e in (("ingest", ingest["error"]), ("render", render["error"]),
                                          *((f"caption {s}", c["error"]) for s, c in captions.items())) if e]
    states = {"ingest": ingest["state"], "render": render["state"]}
    failed = [(stage, e) for stage, e in errors if states.get(stage) == "failed"]
    last = (failed or errors or [(None, None)])[0]
    return {"week": week.isoformat(), "id": layout.week_id(week), "ingest": ingest, "render": render,
            "captions": captions, "last_error": f"{last[0]}: {last[1]}" if last[0] else None}


def collect_weeks(folder: DataFolder, profile: str = layout.DEFAULT_PROFILE, start: dt.date | None = None,
                  end: dt.date | None = None) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Per-week stage status (weeks with any trace on disk, plus every grant week of the range) and caption sets."""
    raw = _raw_archives(folder)
    failures = _failures(folder, "ingest")
    render_failures = _failures(folder, layout.render_stage(profile))
    weeks = set(raw) | set(failures) | set(render_failures) | set(finished_weeks(folder, "ingest"))
    weeks |= set(finished_weeks(folder, layout.render_stage(profile)))
    weeks |= {w for name in folder.ls_dirs(f"shards/{profile}") if (w := _week_of(name))}
    if start is not None or end is not None:
        lo, hi = start or dt.date.min, end or dt.date.max
        weeks = {w for w in weeks if lo <= w <= hi}
        if start is not None and end is not None:
            weeks |= set(grant_weeks(start, end))
    sets = caption_sets(folder, profile)
    rows = [_week_status(folder, profile, w, sorted(sets), raw.get(w), failures.get(w), render_failures.get(w))
            for w in sorted(weeks)]
    return rows, sets


# ------------------------------------------------------------------------------------------------- dataset level


def _release(folder: DataFolder, version: str) -> dict[str, Any]:
    """A release with its marker (done), or a crashed run's leftovers (folder without release.json)."""
    marker = _read_json(folder, layout.release_marker(version))
    if marker is None or "unreadable" in marker:
        files = folder.find(layout.release_dir(version))
        tars = [f for f in files if f.endswith(".tar")]
        return {"version": version, "state": "leftovers", "files": len(files), "shards": len(tars),
                "error": (marker or {}).get("unreadable") or
                f"no {layout.release_marker(version)}: a crashed build; the next "
                f"`designclip release --version {version}` removes and rebuilds it"}
    splits = {s: {"samples": c.get("samples", 0), "patents": c.get("patents", 0), "shards": c.get("shards", 0)}
              for s, c in (marker.get("splits") or {}).items()}
    return {"version": version, "state": "done", "samples": marker.get("samples", 0),
            "patents": marker.get("patents", 0), "splits": splits, "weeks": len((marker.get("fingerprint") or {})
                                                                                  .get("inputs") or []),
            "not_included": len(marker.get("not_included") or []),
            "finished_at": marker.get("finished_at") or folder.modified(layout.release_marker(version)),
            "error": None}


def collect_deeppatent(folder: DataFolder) -> list[dict[str, Any]]:
    """Each DeepPatent rebuild: weeks built, listed sheets written, training sheets, listed patents with per-FIG.
    views, and its missing line."""
    out = []
    for name in folder.ls_dirs(layout.stats_dir(layout.DEEPPATENT_STAGE)):
        markers = [m for rel in folder.list(layout.stats_dir(layout.deeppatent_stage(name)), ".json")
                   if (m := _read_json(folder, rel)) and "unreadable" not in m]
        missing = _read_json(folder, layout.deeppatent_file(name, "missing.json")) or {}
        out.append({"name": name, "weeks_built": len(markers), "listed": sum(m.get("listed", 0) for m in markers),
                    "listed_written": sum(m.get("listed_written", 0) for m in markers),
                    "train_sheets": sum(len(m.get("train") or []) for m in markers),
                    "train_patents": len({p.split("/")[1] for m in markers for p in m.get("train") or []}),
                    "view_patents": sum(len((m.get("views") or {}).get("patents") or {}) for m in markers),
                    "view_patents_listed": sum((m.get("views") or {}).get("wanted", 0) for m in markers),
                    "missing": missing.get("summary") or f"no {layout.deeppatent_file(name, 'missing.json')} yet: "
                    "rerun `designclip deeppatent build` to finish it"})
    return out


def _last_metrics(folder: DataFolder, rel: str) -> dict[str, Any] | None:
    if not folder.exists(rel):
        return None
    last = None
    for line in folder.read_bytes(rel).decode(errors="replace").splitlines():
        try:
            last = json.loads(line)
        except ValueError:
            break
    return last


def _train_run(folder: DataFolder, run: str) -> dict[str, Any]:
    """done (train.json) or partial (checkpoints/metrics only); whether its model folder is exported."""
    base = layout.train_run_dir(run)
    record = _read_json(folder, f"{base}/run.json") or {}
    done = _read_json(folder, f"{base}/train.json")
    model = _read_json(folder, f"{layout.model_dir(run)}/designclip.json")
    out: dict[str, Any] = {"run": run, "release": (record.get("release") or {}).get("version"),
                           "model_exported": model is not None and "unreadable" not in model,
                           "model_dir": folder.path(layout.model_dir(run)) if model is not None else None}
    if done is not None and "unreadable" not in done:
        return out | {"state": "done", "step": done.get("step"), "total_steps": done.get("total_steps"),
                      "finished": bool(done.get("finished", True)), "checkpoint_step": done.get("step"),
                      "finished_at": done.get("finished_at"),
                      "release": out["release"] or ((done.get("record") or {}).get("release") or {}).get("version")}
    checkpoint = None
    for name in reversed(folder.ls_dirs(f"{base}/checkpoints")):
        if _STEP.match(name) and (state := _read_json(folder, f"{base}/checkpoints/{name}/trainer_state.json")):
            checkpoint = state
            break
    metrics = _last_metrics(folder, f"{base}/metrics.jsonl") or {}
    step = max(int((checkpoint or {}).get("step", 0)), int(metrics.get("step", 0)))
    total = (checkpoint or {}).get("total_steps") or metrics.get("total_steps")
    state = "partial" if (checkpoint or metrics or record) else "missing"
    return out | {"state": state, "step": step, "total_steps": total, "finished": False,
                  "checkpoint_step": (checkpoint or {}).get("step"), "finished_at": None}


def _embeddings(folder: DataFolder, release: str, tag: str, release_done: bool) -> dict[str, Any]:
    """Finished shards (stats written, of this build of the release) over the release's shards, per split."""
    record = _read_json(folder, layout.embed_record(release, tag))
    fingerprint = release_fingerprint(folder, release) if release_done else None
    splits: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        sizes = _read_json(folder, layout.release_file(release, layout.release_sizes_name(split))) or {}
        stats = [s for rel in folder.list(f"{layout.embed_dir(release, tag)}/{split}", ".stats.json")
                 if (s := _read_json(folder, rel)) is not None]
        if not stats and not sizes:
            continue
        current = [s for s in stats if fingerprint is None or s.get("release_fingerprint") == fingerprint]
        splits[split] = {"done": len(current), "stale": len(stats) - len(current),
                         "total": len([k for k in sizes if k != "unreadable"]),
                         "samples": sum(s.get("samples", 0) for s in current)}
    done = sum(s["done"] for s in splits.values())
    total = sum(s["total"] for s in splits.values())
    embedded = {k: v for k, v in splits.items() if v["done"] or v["stale"]}
    if record is None and not embedded:
        state = "missing"
    elif embedded and all(v["done"] >= v["total"] > 0 for v in embedded.values()):
        state = "done"
    else:
        state = "partial"
    stale = sum(s["stale"] for s in splits.values())
    return {"state": state, "shards_done": done, "shards_total": total, "stale_shards": stale, "splits": splits,
            "model": ((record or {}).get("spec") or {}).get("model"),
            "error": f"{stale} shards embedded from an older build of the release" if stale else None}


def _index(folder: DataFolder, release: str, tag: str, name: str) -> dict[str, Any]:
    card = _read_json(folder, f"{layout.index_dir(release, tag, name)}/card.json")
    if card is None or "unreadable" in card:
        return {"name": name, "state": "partial", "error": (card or {}).get("unreadable") or
                "no card.json: an unfinished build"}
    return {"name": name, "state": "done", "factory": card.get("factory"), "n": card.get("n"),
            "recall_at_10": card.get("recall_at_10"), "met_target": card.get("met_target"),
            "target_recall": card.get("target_recall"), "latency_ms": card.get("latency_ms"), "error": None}


def _report(folder: DataFolder, release: str, tag: str) -> dict[str, Any]:
    report = _read_json(folder, layout.report_file(release, tag, "report.json"))
    if report is None or "unreadable" in report:
        has_files = folder.exists(layout.report_dir(release, tag))
        return {"state": "partial" if has_files else "missing",
                "error": (report or {}).get("unreadable") or ("no report.json: an unfinished evaluation"
                                                              if has_files else None)}
    return {"state": "done", "created_at": report.get("created_at"), "files": len(report.get("files") or []),
            "error": None}


def collect_outputs(folder: DataFolder, releases: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per release and model tag: embeddings, indexes and the evaluation report."""
    pairs: set[tuple[str, str]] = set()
    for top in ("embeddings", "indexes", "reports"):
        for release in folder.ls_dirs(top):
            pairs |= {(release, tag) for tag in folder.ls_dirs(f"{top}/{release}")}
    out = []
    for release, tag in sorted(pairs):
        done = (releases.get(release) or {}).get("state") == "done"
        indexes = [_index(folder, release, tag, n) for n in folder.ls_dirs(layout.index_model_dir(release, tag))]
        if release.startswith(layout.GROWN_MARK):  # a grown index (index --append): its vectors are the releases'
            not_its_own = {"state": "n/a", "error": None}  # @NAME: a grown index or the DeepPatent benchmark alone
            report = _report(folder, release, tag) if folder.exists(layout.report_dir(release, tag)) else not_its_own
            out.append({"release": release, "model_tag": tag, "embeddings": not_its_own,
                         "indexes": {i["name"]: i for i in indexes}, "report": report})
            continue
        out.append({"release": release, "model_tag": tag, "embeddings": _embeddings(folder, release, tag, done),
                    "indexes": {i["name"]: i for i in indexes}, "report": _report(folder, release, tag)})
    return out


def _summary(weeks: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """How many weeks are in each state, per stage."""
    out: dict[str, Counter[str]] = {"ingest": Counter(), "render": Counter()}
    for w in weeks:
        out["ingest"][w["ingest"]["state"]] += 1
        out["render"][w["render"]["state"]] += 1
        for name, c in w["captions"].items():
            out.setdefault(f"caption {name}", Counter())[c["state"]] += 1
    return {stage: dict(c) for stage, c in out.items()}


def disk_usage(folder: DataFolder) -> dict[str, int]:
    """Bytes on disk per area (raw downloads, images, shards, captions, releases, models, embeddings, indexes)."""
    return {area: folder.du(area) for area in layout.AREAS}


def collect_status(folder: DataFolder | str, start: dt.date | None = None, end: dt.date | None = None,
                   profile: str = layout.DEFAULT_PROFILE) -> dict[str, Any]:
    """The whole pipeline's state from the data root's markers and failure records (JSON-ready)."""
    if not isinstance(folder, DataFolder):
        folder = DataFolder(folder)
    if start is not None and end is not None and start > end:
        raise ValueError(f"--start {start} is after --end {end}")
    if not folder.exists(""):
        raise FileNotFoundError(f"no data root at {folder.url}: pass --data-root (or set DESIGNCLIP_DATA_ROOT)")
    weeks, sets = collect_weeks(folder, profile, start, end)
    releases = {v: _release(folder, v) for v in folder.ls_dirs("releases")}
    runs = sorted(set(folder.ls_dirs("runs")) | set(folder.ls_dirs("models")))
    return {
        "data_root": folder.url,
        "profile": profile,
        "range": {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None},
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "caption_sets": {name: {k: rec.get(k) for k in ("backend", "model_id", "prompt_version")}
                         for name, rec in sets.items()},
        "weeks": weeks,
        "summary": _summary(weeks),
        "releases": list(releases.values()),
        "runs": [_train_run(folder, r) for r in runs],
        "outputs": collect_outputs(folder, releases),
        "deeppatent": collect_deeppatent(folder),
        "disk": disk_usage(folder),
    }
