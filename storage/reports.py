"""Evaluation report folders: report.md, plots, DIRA result.npy, and report.json written last as the done marker.

report.json carries an inputs fingerprint (release build, the embeddings' stats files and encoder.json, the
evaluation settings): an evaluation whose fingerprint matches a finished report is skipped.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker

REPORT_JSON = "report.json"
DIRA_RESULT = "dira_result.npy"  # DeepPatent protocol on the release's test split (views_per_query 1)
DIRA_KEYS = "dira_keys.json"  # which sample key each query row / database index of dira_result.npy is
LISTS_RESULT = "deeppatent/result.npy"  # the DIRA challenge file for the real DeepPatent test lists
DIRA_TOP = 10  # columns of a DIRA result: database indices best first, -1 padded


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(inputs: dict[str, Any]) -> str:
    """sha256 of the inputs record (sorted JSON): equal inputs, equal fingerprint."""
    return _sha256(json.dumps(inputs, sort_keys=True, default=str).encode())


def report_dir(folder: DataFolder, release: str, tag: str) -> str:
    """Full path of the model's report folder."""
    return folder.path(layout.report_dir(release, tag))


def report_marker(folder: DataFolder, release: str, tag: str) -> DoneMarker:
    """report.json, the evaluation's done marker: removed first while files change, written last."""
    return DoneMarker(folder, layout.report_file(release, tag, REPORT_JSON))


def read_report(folder: DataFolder, release: str, tag: str) -> dict[str, Any] | None:
    """The finished report (report.json), or None when there is none (or only a crashed run's leftovers)."""
    return report_marker(folder, release, tag).read()


def finished_report(folder: DataFolder, release: str, tag: str, inputs_fingerprint: str) -> dict[str, Any] | None:
    """The finished report made from exactly these inputs, else None (then the evaluation runs)."""
    report = read_report(folder, release, tag)
    if report is None or (report.get("inputs") or {}).get("fingerprint") != inputs_fingerprint:
        return None
    return report


def _write_npy(folder: DataFolder, rel: str, array: np.ndarray) -> None:
    with folder.atomic_open(rel, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _dira(name: str, top: Any) -> np.ndarray:
    """A DIRA top-10 as the evaluation made it (pipeline.evaluate.deeppatent.dira_top10): int64 (queries, 10)."""
    array = np.asarray(top)
    if array.ndim != 2 or array.shape[1] != DIRA_TOP or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name}: expected integer database indices of shape (queries, {DIRA_TOP}) "
                         f"(dira_top10 makes them), got {array.dtype} {array.shape}")
    return array.astype(np.int64)


def write_report(folder: DataFolder, release: str, tag: str, report: dict[str, Any], files: dict[str, bytes],
                 arrays: dict[str, Any] | None = None) -> dict[str, str]:
    """Write `files` (name -> bytes), the DIRA arrays, then report.json LAST; returns name -> full path.

    `arrays` may hold `dira_topk` (+ `dira_query_keys`, `dira_db_keys`) and `deeppatent_lists_topk`, each already in
    the DIRA format (int64 (queries, 10) database indices best first, -1 padded); they are written as `.npy`.
    """
    arrays = arrays or {}
    marker = report_marker(folder, release, tag)
    old = marker.read()
    marker.remove()  # no done marker while files change
    folder.remove_temporaries(layout.report_dir(release, tag))
    written: list[str] = []
    for name, data in files.items():
        with folder.atomic_open(layout.report_file(release, tag, name), "wb") as f:
            f.write(data)
        written.append(name)
    if arrays.get("dira_topk") is not None:
        _write_npy(folder, layout.report_file(release, tag, DIRA_RESULT), _dira("dira_topk", arrays["dira_topk"]))
        folder.write_json(layout.report_file(release, tag, DIRA_KEYS),
                          {"queries": list(arrays.get("dira_query_keys") or []),
                           "database": list(arrays.get("dira_db_keys") or [])})
        written += [DIRA_RESULT, DIRA_KEYS]
    if arrays.get("deeppatent_lists_topk") is not None:
        _write_npy(folder, layout.report_file(release, tag, LISTS_RESULT),
                   _dira("deeppatent_lists_topk", arrays["deeppatent_lists_topk"]))
        written.append(LISTS_RESULT)
    for name in set((old or {}).get("files") or []) - set(written) - {REPORT_JSON}:
        folder.remove(layout.report_file(release, tag, name))  # a file of the previous report this one lacks
    marker.write({**report, "files": sorted(written)})
    return {name: folder.path(layout.report_file(release, tag, name)) for name in [*written, REPORT_JSON]}


def read_report_file(folder: DataFolder, release: str, tag: str, name: str) -> bytes | None:
    """One file of the report folder (report.md, recall.png, ...), None when it is not there."""
    rel = layout.report_file(release, tag, name)
    return folder.read_bytes(rel) if folder.exists(rel) else None


def read_dira_result(folder: DataFolder, release: str, tag: str, lists: bool = False) -> np.ndarray:
    """The stored DIRA top-10 (int64 (queries, 10)) of the test split, or of the real lists (`lists=True`)."""
    import io

    rel = layout.report_file(release, tag, LISTS_RESULT if lists else DIRA_RESULT)
    return np.load(io.BytesIO(folder.read_bytes(rel)), allow_pickle=False)


def write_comparison(folder: DataFolder, release: str, name: str, markdown: str, png: bytes) -> dict[str, str]:
    """compare-NAME.md and compare-NAME.png beside the model folders; returns their full paths."""
    md_rel, png_rel = layout.comparison_report(release, name), layout.comparison_plot(release, name)
    with folder.atomic_open(png_rel, "wb") as f:
        f.write(png)
    with folder.atomic_open(md_rel, "w") as f:
        f.write(markdown)
    return {"markdown": folder.path(md_rel), "plot": folder.path(png_rel)}
