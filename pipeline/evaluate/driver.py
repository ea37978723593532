"""The EVALUATE stage driver, Prefect-free: one model's stored vectors (embedded first when missing) -> its report.

Unit: a model (spec and tag) on a release. Done: report.json (written last) made from the same inputs (release
and embeddings fingerprints, settings).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.common.classes import locarno_class_titles
from designclip.pipeline.common.stage import Logger, Progress, Scope, UnitResult, no_progress
from designclip.pipeline.embed.encoder import EncoderSpec, model_tag
from designclip.pipeline.embed.encoder_cache import get_encoder
from designclip.pipeline.evaluate.benchmark import benchmark_patents, score_benchmark
from designclip.pipeline.evaluate.classes import PROBE_MAX
from designclip.pipeline.evaluate.evaluation import REPORT_SCHEMA, evaluate_vectors, set_deeppatent_keys
from designclip.pipeline.evaluate.inputs import (
    empty_test_split,
    ensure_embeddings,
    lists_record,
    missing_splits,
    release_splits,
)
from designclip.pipeline.evaluate.lists import evaluate_deeppatent_lists, list_patents
from designclip.pipeline.evaluate.overlap import check_overlap, training_overlap
from designclip.pipeline.evaluate.prompts import class_prompt_vectors, model_record
from designclip.pipeline.evaluate.ranking_sheet import ranking_pictures
from designclip.pipeline.evaluate.report import confusion_pngs, recall_png, report_markdown
from designclip.storage import layout
from designclip.storage.embeddings import (
    EmbeddingsConflict,
    embeddings_fingerprint,
    load_split_vectors,
    read_encoder_record,
    release_fingerprint,
)
from designclip.storage.eval_inputs import caption_fallback, caption_provenance, render_size
from designclip.storage.folder import DataFolder
from designclip.storage.reports import REPORT_JSON, fingerprint, finished_report, write_report


@dataclass(frozen=True)
class EvaluateOptions:
    """How models are scored: seeds and sample sizes, the DeepPatent lists, embedding of missing splits, force."""

    seed: int = 0
    pairs_5k: int = 5000
    deeppatent_lists: Mapping[str, str] | None = None  # {query_list, db_list, image_root} or {lists_dir, image_root}
    batch_size: int = 64
    device: str | None = None
    embed_missing: bool = True
    force: bool = False
    probe_max: int = PROBE_MAX
    allow_deeppatent_overlap: bool = False
    skip_missing: bool = False  # DeepPatent list lines without their image: left out and counted, not an error


@dataclass(frozen=True)
class EvalUnit:
    """One model on a release (`tag`: the name its vectors and report are stored under; default from the spec)."""

    release: str
    spec: EncoderSpec
    tag: str | None = None

    @property
    def model_tag(self) -> str:
        return self.tag or model_tag(self.spec)

    def __str__(self) -> str:
        return self.model_tag


def _inputs(folder: DataFolder, unit: EvalUnit, options: EvaluateOptions, splits: list[str]) -> dict[str, Any]:
    """The report's inputs record and its fingerprint: same fingerprint as a finished report -> skipped."""
    inputs: dict[str, Any] = {
        "release": release_fingerprint(folder, unit.release),
        "embeddings": embeddings_fingerprint(folder, unit.release, unit.model_tag, splits),
        "settings": {"schema": REPORT_SCHEMA, "seed": options.seed, "pairs_5k": options.pairs_5k,
                     "probe_max": options.probe_max, "deeppatent_lists": lists_record(options.deeppatent_lists),
                     "allow_deeppatent_overlap": options.allow_deeppatent_overlap,
                     **({"skip_missing_images": True} if options.skip_missing else {})},
    }
    inputs["fingerprint"] = fingerprint(inputs)
    return inputs


@dataclass(frozen=True)
class EvaluateDriver:
    """EVALUATE: score one model on a release's test split (val fits the probes) and write its report folder."""

    log: Logger = field(default_factory=lambda: logging.getLogger("designclip.evaluate"))
    name: str = "evaluate"

    def units(self, folder: DataFolder, scope: Scope, options: EvaluateOptions) -> list[EvalUnit]:
        return [EvalUnit(scope.release, EncoderSpec(m)) for m in scope.models or (scope.run,)]

    def is_done(self, folder: DataFolder, unit: EvalUnit, options: EvaluateOptions) -> bool:
        splits = release_splits(folder, unit.release)
        if empty_test_split(folder, unit.release):
            return True  # nothing to evaluate: `run` says so
        if options.force or missing_splits(folder, unit.release, unit.model_tag, splits):
            return False
        inputs = _inputs(folder, unit, options, splits)
        return finished_report(folder, unit.release, unit.model_tag, inputs["fingerprint"]) is not None

    def outputs(self, folder: DataFolder, scope: Scope, options: EvaluateOptions) -> str:
        return folder.path(layout.report_dir(scope.release, EvalUnit(scope.release, EncoderSpec(scope.run)).model_tag))

    def run(self, folder: DataFolder, unit: EvalUnit, options: EvaluateOptions,
            progress: Progress = no_progress) -> UnitResult:
        """Evaluate and write the report (progress: images of the DeepPatent lists); same inputs -> skipped."""
        log, release, tag, spec = self.log, unit.release, unit.model_tag, unit.spec
        started = time.perf_counter()
        splits = release_splits(folder, release)
        report_path = folder.path(layout.report_dir(release, tag))
        if (why := empty_test_split(folder, release)) is not None:
            log.warning("evaluate %s: %s", tag, why)
            return UnitResult(self.name, tag, True, not_evaluated(release, tag, why), report_path)
        embedded = ensure_embeddings(folder.url, release, spec, tag, splits, options.batch_size, options.device,
                                     options.embed_missing, log)
        inputs = _inputs(folder, unit, options, splits)
        done = None if options.force else finished_report(folder, release, tag, inputs["fingerprint"])
        if done is not None:
            log.info("evaluate %s on %s: report already made from these inputs (%s)", tag, release, report_path)
            return UnitResult(self.name, tag, True, done, report_path)
        encoder = get_encoder(spec, folder.url, options.device, tag=tag)
        stored = read_encoder_record(folder, release, tag) or {}
        if stored.get("weights_sha256") != encoder.record().get("weights_sha256"):
            raise EmbeddingsConflict(f"the vectors under tag {tag!r} were made by other weights "
                                     f"({str(stored.get('weights_sha256'))[:12]}) than {spec.model} "
                                     f"({str(encoder.record().get('weights_sha256'))[:12]}): pick another tag")
        test = load_split_vectors(folder, release, tag, "test")
        val = load_split_vectors(folder, release, tag, "val") if "val" in splits else None
        lists = options.deeppatent_lists
        if lists and lists.get("lists_dir"):
            scored, scored_on = benchmark_patents(lists["lists_dir"]), "the DeepPatent benchmark lists"
        elif lists:
            scored, scored_on = list_patents(lists["query_list"], lists["db_list"]), "the DeepPatent lists"
        else:
            scored, scored_on = {p for p in test.meta.column("patent_id").to_pylist() if p}, f"the {release} test split"
        overlap = training_overlap(folder, encoder, scored, scored_on)
        check_overlap(overlap, tag, options.allow_deeppatent_overlap, log)
        prompts, prompt_info = class_prompt_vectors(encoder)
        log.info("evaluate %s on %s: %d test views, %s val views", tag, release, len(test),
                 len(val) if val is not None else "no")
        report = evaluate_vectors(test, val, prompts, list(locarno_class_titles()), seed=options.seed,
                                  pairs_5k=options.pairs_5k, probe_max=options.probe_max,
                                  caption_fallback=caption_fallback(folder, release, test.keys),
                                  prompt_info=prompt_info)
        arrays = report.pop("arrays")
        pictures: dict[str, bytes] = {}
        if lists and lists.get("lists_dir"):
            bench, tops = score_benchmark(encoder, lists["lists_dir"], lists["image_root"], options.batch_size,
                                          progress, size=render_size(folder, release),
                                          skip_missing=options.skip_missing)
            report["deeppatent_benchmark"] = bench
            report["deeppatent_lists"] = bench["splits"]["test"]  # the stable deeppatent.* keys are test's
            arrays["deeppatent_lists_topk"] = tops["test"]
            pictures = ranking_pictures(bench, tops, tag)
        elif lists:
            metrics, topk = evaluate_deeppatent_lists(encoder, lists["query_list"], lists["db_list"],
                                                      lists["image_root"], options.batch_size, progress,
                                                      size=render_size(folder, release),
                                                      skip_missing=options.skip_missing)
            report["deeppatent_lists"] = metrics
            arrays["deeppatent_lists_topk"] = topk
        set_deeppatent_keys(report, overlap)
        report.update({
            "model": model_record(encoder), "release": {"version": release, "fingerprint_sha256": inputs["release"]},
            "captions": {**caption_provenance(folder, release),
                         "fallback_test_views": (report["retrieval"].get("all_views") or {}).get(
                             "metadata_fallback_captions", 0)},
            "inputs": inputs, "embedded_now": embedded, "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "seconds": round(time.perf_counter() - started, 3),
        })
        files: dict[str, bytes] = {"recall.png": recall_png([report], f"{tag} on {release} (test split)")}
        files.update(confusion_pngs(report))
        files.update(pictures)
        files = {"report.md": report_markdown(report, images=list(files)).encode(), **files}
        written = write_report(folder, release, tag, report, files, arrays)
        log.info("evaluate %s on %s: report written to %s", tag, release, report_path)
        report = {**report, "files": sorted(n for n in written if n != REPORT_JSON)}
        return UnitResult(self.name, tag, False, report, report_path)


EVALUATE = EvaluateDriver()


def not_evaluated(release: str, tag: str, why: str) -> dict[str, Any]:
    """The stats of a model not evaluated (a release without test views): no report is written, the reason is kept."""
    return {"model": {"tag": tag}, "release": {"version": release}, "not_evaluated": why, "files": []}


def evaluation_of(folder: DataFolder, unit: EvalUnit, result: UnitResult) -> dict[str, Any]:
    """{model_tag, release, report_dir, skipped, report (report.json's content), files (name -> path)}."""
    report = dict(result.stats)
    names = [*report.get("files", []), REPORT_JSON]
    return {"model_tag": unit.model_tag, "release": unit.release, "report_dir": result.where,
            "skipped": result.skipped, "report": report,
            "files": {n: folder.path(layout.report_file(unit.release, unit.model_tag, n)) for n in names}}


def evaluate_model(data_root: str, release: str, spec: EncoderSpec, *, seed: int = 0, pairs_5k: int = 5000,
                   deeppatent_lists: dict[str, str] | None = None, batch_size: int = 64, device: str | None = None,
                   tag: str | None = None, embed_missing: bool = True, force: bool = False,
                   probe_max: int = PROBE_MAX, allow_deeppatent_overlap: bool = False,
                   skip_missing: bool = False, logger: Logger | None = None,
                   progress: Progress = no_progress) -> dict[str, Any]:
    """Evaluate one model on a release in this process and write its report folder (see `evaluation_of`)."""
    driver = EvaluateDriver(logger) if logger is not None else EVALUATE
    options = EvaluateOptions(seed, pairs_5k, deeppatent_lists, batch_size, device, embed_missing, force, probe_max,
                              allow_deeppatent_overlap, skip_missing)
    folder, unit = DataFolder(data_root), EvalUnit(release, spec, tag)
    return evaluation_of(folder, unit, driver.run(folder, unit, options, progress))
