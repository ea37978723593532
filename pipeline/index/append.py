"""Grow one index over several releases (`designclip index --append`): a new release's vectors by the same model
are added to the index without rebuilding it, the id -> key table follows, and recall is measured again.

Unit: one kind of vectors of a release appended to the grown index NAME of a model. Done: the card lists the
release with the same embeddings fingerprint (appending it again is a no-op that says so).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
from designclip.pipeline.common.stage import Logger, Progress, UnitResult, no_progress
from designclip.pipeline.index.driver import IndexOptions
from designclip.pipeline.index.faiss_index import IndexBuildError, build_index, check_vectors, uses_gpu
from designclip.pipeline.index.grown_checks import (
    AppendRefused,
    check_held_release,
    check_model,
    check_no_overlap,
    check_only_model,
    encoder_identity,
    fingerprint_of,
)
from designclip.pipeline.index.grown_measure import grown_database, measure_grown, plan_of_card, rebuild_advice
from designclip.pipeline.index.inputs import IndexInputs, gather_vectors
from designclip.pipeline.index.plan import plan_index
from designclip.storage import layout
from designclip.storage.embeddings import read_encoder_record
from designclip.storage.folder import DataFolder
from designclip.storage.grown_indexes import (
    KEYS,
    check_name,
    read_grown_card,
    read_grown_index,
    read_grown_keys,
    write_grown_index,
)

ADD_BATCH = 65_536
DEFAULT_NAME = "all"


@dataclass(frozen=True)
class GrownUnit:
    """The `kind` vectors of `release` by `model_tag`, appended to the grown index `name`."""

    name: str
    release: str
    model_tag: str
    kind: str = "image"

    def __str__(self) -> str:
        return f"{self.name}+{self.release}/{self.model_tag}/{self.kind}"


def add_vectors(index: faiss.Index, vectors: np.ndarray, first_id: int, say: Any = None) -> float:
    """Add rows with ids first_id.. (in batches) to a trained index; returns the seconds it took."""
    started = time.perf_counter()
    for start in range(0, len(vectors), ADD_BATCH):
        end = min(len(vectors), start + ADD_BATCH)
        index.add_with_ids(vectors[start:end], np.arange(first_id + start, first_id + end, dtype=np.int64))
    seconds = time.perf_counter() - started
    if say is not None:
        say(f"added {len(vectors)} vectors in {seconds:.1f}s")
    return seconds


def _keys_table(release: str, keys: list[str], first_id: int) -> pa.Table:
    ids = np.arange(first_id, first_id + len(keys), dtype=np.int64)
    return pa.table({"id": ids, "release": [release] * len(keys), "key": keys, "row": ids}, schema=KEYS)


@dataclass(frozen=True)
class AppendDriver:
    """INDEX --append: add one release's vectors to a grown index (started by the first release appended)."""

    log: Logger = field(default_factory=lambda: logging.getLogger("designclip.index"))
    name: str = "index-append"

    def _held(self, folder: DataFolder, unit: GrownUnit, options: IndexOptions) -> dict[str, Any] | None:
        card = read_grown_card(folder, unit.name, unit.model_tag, unit.kind)
        return next((r for r in (card or {}).get("releases", []) if r["release"] == unit.release), None)

    def is_done(self, folder: DataFolder, unit: GrownUnit, options: IndexOptions) -> bool:
        held = self._held(folder, unit, options)
        return held is not None and held["embeddings_fingerprint"] == fingerprint_of(folder, unit.release,
                                                                                     unit.model_tag, options)

    def outputs(self, folder: DataFolder, unit: GrownUnit) -> str:
        return folder.path(layout.grown_index_dir(unit.name, unit.model_tag, unit.kind))

    def run(self, folder: DataFolder, unit: GrownUnit, options: IndexOptions,
            progress: Progress = no_progress) -> UnitResult:
        """Append the release (progress 0/1, then 1/1 once the new generation is written); held already: kept."""
        name, release, tag, kind, log = check_name(unit.name), unit.release, unit.model_tag, unit.kind, self.log
        where = self.outputs(folder, unit)
        record = read_encoder_record(folder, release, tag)
        if record is None:
            raise AppendRefused(f"release {release} has no embeddings by {tag}: run `designclip embed --release "
                                f"{release} --model {tag}` first, then append it")
        check_only_model(folder, name, tag)
        card = read_grown_card(folder, name, tag, kind)
        fingerprint = fingerprint_of(folder, release, tag, options)
        if card is not None:
            check_model(card, encoder_identity(record, tag), name, release)
            held = next((r for r in card["releases"] if r["release"] == release), None)
            if held is not None:
                check_held_release(held, fingerprint, name, tag)
                log.info("grown %s index %r already holds release %s (ids %d..%d): nothing to append", kind, name,
                         release, held["first_id"], held["first_id"] + held["n"] - 1)
                return UnitResult(self.name, str(unit), True, card, where)
        progress(0, 1)
        data = gather_vectors(folder, release, tag, kind, tuple(options.splits), options.max_queries, options.seed)
        if not data.keys:
            raise IndexBuildError(f"release {release} by {tag}: no usable {kind} vectors to append "
                                  f"({data.left_out} left out: {data.left_out_reason})")
        vectors = check_vectors(data.vectors, int(record["dim"]))
        if card is None:
            card = self._start(folder, unit, options, record, data, vectors, fingerprint)
        else:
            card = self._grow(folder, unit, options, card, data, vectors, fingerprint)
        progress(1, 1)
        return UnitResult(self.name, str(unit), False, card, where)

    def _start(self, folder: DataFolder, unit: GrownUnit, options: IndexOptions, record: dict[str, Any],
               data: IndexInputs, vectors: np.ndarray, fingerprint: str) -> dict[str, Any]:
        """The first release: plan and build the index over it, ids 0..n-1."""
        kind, log = unit.kind, self.log
        plan = plan_index(len(vectors), vectors.shape[1], int(options.memory_budget_gb * 2**30), options.flat_max)
        log.info("grown %s index %r: started with release %s: %s over %d vectors (%s)", kind, unit.name,
                 unit.release, plan.factory, plan.n, plan.reason)
        started = time.perf_counter()
        index = build_index(vectors, np.arange(len(vectors), dtype=np.int64), plan, use_gpu=options.use_gpu,
                            progress=lambda m: log.info("grown %s index: %s", kind, m), seed=options.seed)
        seconds = time.perf_counter() - started
        base = {"index_name": unit.name, "model_tag": unit.model_tag, "name": kind, "vectors": kind,
                **encoder_identity(record, unit.model_tag), "factory": plan.factory, "kind": plan.kind,
                "params": plan.params, "reason": plan.reason, "build_seconds": round(seconds, 3),
                "gpu": uses_gpu(plan, options.use_gpu), "releases": [],
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        return self._finish(folder, unit, options, base, index, [], None, data, fingerprint, seconds)

    def _grow(self, folder: DataFolder, unit: GrownUnit, options: IndexOptions, card: dict[str, Any],
              data: IndexInputs, vectors: np.ndarray, fingerprint: str) -> dict[str, Any]:
        """A later release: load the current generation, check the releases it holds, add the new rows."""
        name, tag, kind = unit.name, unit.model_tag, unit.kind
        keys = read_grown_keys(folder, name, tag, kind, card)
        check_no_overlap(keys, unit.release, data.keys, name)
        held = grown_database(folder, card, keys, options, self.log)  # before the load: refusals come first
        index = read_grown_index(folder, name, tag, kind).index
        first_id = int(index.ntotal)
        self.log.info("grown %s index %r: appending release %s (%d vectors, ids from %d) to %s over %d", kind, name,
                      unit.release, len(vectors), first_id, card["factory"], first_id)
        seconds = add_vectors(index, vectors, first_id, lambda m: self.log.info("grown %s index: %s", kind, m))
        return self._finish(folder, unit, options, card, index, held, keys, data, fingerprint, seconds)

    def _finish(self, folder: DataFolder, unit: GrownUnit, options: IndexOptions, card: dict[str, Any],
                index: faiss.Index, held: list[IndexInputs], old_keys: pa.Table | None, data: IndexInputs,
                fingerprint: str, add_seconds: float) -> dict[str, Any]:
        """Re-tune and measure over every release held, then the new generation and its card."""
        first_id = 0 if old_keys is None else old_keys.num_rows
        plan = plan_of_card(card, first_id + len(data.keys))
        measured = measure_grown(index, plan, [*held, data], options, self.log, unit.kind)
        entry = {"release": unit.release, "splits": list(options.splits), "n": len(data.keys), "first_id": first_id,
                 "rows_total": data.rows_total, "left_out": data.left_out, "left_out_reason": data.left_out_reason,
                 "embeddings_fingerprint": fingerprint, "add_seconds": round(add_seconds, 3),
                 "appended_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        n = first_id + len(data.keys)
        new_card = {**card, **measured, "n": n, "est_bytes": plan.est_bytes, "releases": [*card["releases"], entry],
                    "rebuild_advice": rebuild_advice(plan, options), "memory_budget_gb": options.memory_budget_gb,
                    "faiss_version": faiss.__version__, "settings": options.settings(unit.kind),
                    "updated_at": entry["appended_at"]}
        new_keys = _keys_table(unit.release, data.keys, first_id)
        keys = new_keys if old_keys is None else pa.concat_tables([old_keys, new_keys])
        return write_grown_index(folder, unit.name, unit.model_tag, unit.kind, index, keys, new_card)


APPEND = AppendDriver()


def append_release(data_root: str, release: str, model_tag: str, name: str = DEFAULT_NAME, kind: str = "image",
                   options: IndexOptions | None = None, logger: Logger | None = None) -> dict[str, Any]:
    """Append a release's `kind` vectors to the grown index `name` in this process; the card plus `skipped`/`path`."""
    driver = AppendDriver(logger) if logger is not None else APPEND
    result = driver.run(DataFolder(data_root), GrownUnit(name, release, model_tag, kind), options or IndexOptions())
    return {**result.stats, "skipped": result.skipped, "path": result.where}
