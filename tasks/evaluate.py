"""The evaluate task: one model's stored vectors (embedded first when missing) -> its report folder."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline.classes import locarno_class_titles, us_design_class_titles
from pipeline.embed import EncoderSpec, model_tag
from pipeline.eval_report import confusion_pngs, recall_png, report_markdown
from pipeline.evaluate import PROBE_TRAIN_MAX, REPORT_SCHEMA, evaluate_deeppatent_lists, evaluate_vectors
from storage import layout
from storage.embeddings import (
    EmbeddingsConflict,
    EmbeddingsMissing,
    embedded_splits,
    embeddings_fingerprint,
    load_split_vectors,
    read_encoder_record,
    release_fingerprint,
)
from storage.folder import DataFolder
from storage.reports import fingerprint, finished_report, write_report
from tasks.progress import CountProgress

Logger = logging.Logger | logging.LoggerAdapter
EVAL_SPLITS = ("test", "train")  # test is evaluated; train fits the linear probes
LIST_KEYS = ("query_list", "db_list", "image_root")


def _lists_record(lists: dict[str, str] | None) -> dict[str, Any] | None:
    """The DeepPatent lists as an input: paths with size and mtime (other lists or images -> another report)."""
    if not lists:
        return None
    missing = [k for k in LIST_KEYS if not lists.get(k)]
    if missing:
        raise ValueError(f"deeppatent_lists needs {', '.join(LIST_KEYS)}; missing {', '.join(missing)}")
    out: dict[str, Any] = {}
    for key in LIST_KEYS:
        path = os.path.abspath(lists[key])
        stat = os.stat(path) if os.path.exists(path) else None
        out[key] = {"path": path, "size": stat.st_size if stat else None, "mtime": stat.st_mtime if stat else None}
    return out


def _release_splits(folder: DataFolder, release: str) -> list[str]:
    """The evaluation splits this release has (a release without a test split cannot be evaluated)."""
    have = [s for s in EVAL_SPLITS if folder.exists(layout.release_file(release, layout.release_sizes_name(s)))]
    if "test" not in have:
        raise EmbeddingsMissing(f"release {release!r} has no finished test split under {folder.url}: build it with "
                                f"`designclip release --version {release}`")
    return have


def ensure_embeddings(data_root: str, release: str, spec: EncoderSpec, tag: str, splits: list[str], batch_size: int,
                      device: str | None, embed_missing: bool, log: Logger) -> list[str]:
    """Embed the evaluation splits that are not embedded yet (or say which command does); returns those embedded."""
    folder = DataFolder(data_root)
    missing = [s for s in splits if s not in embedded_splits(folder, release, tag)]
    if not missing:
        return []
    if not embed_missing:
        raise EmbeddingsMissing(f"release {release} split(s) {', '.join(missing)} are not embedded by {tag}: run "
                                f"`designclip embed --release {release} --model {spec.model}"
                                + (f" --pretrained {spec.pretrained}`" if spec.pretrained else "`"))
    from tasks.embed import embed_release

    log.info("evaluate %s: embedding the %s split(s) of release %s first", tag, ",".join(missing), release)
    summary = embed_release(data_root, release, spec, splits=missing, batch_size=batch_size, device=device,
                            logger=log, tag=tag)
    if summary["failed_shards"]:
        raise EmbeddingsMissing(f"embedding failed for {', '.join(summary['failed_shards'])}")
    return missing


def _model_record(encoder: Any) -> dict[str, Any]:
    record = encoder.record()
    keep = ("tag", "dim", "has_text", "prompt_template", "spec", "kind", "init", "model_name", "weights_sha256")
    return {k: record.get(k) for k in keep}


def evaluate_model(data_root: str, release: str, spec: EncoderSpec, *, seed: int = 0, pairs_5k: int = 5000,
                   deeppatent_lists: dict[str, str] | None = None, batch_size: int = 64, device: str | None = None,
                   tag: str | None = None, embed_missing: bool = True, force: bool = False,
                   probe_train_max: int = PROBE_TRAIN_MAX, logger: Logger | None = None) -> dict[str, Any]:
    """Evaluate one model on a release and write its report folder; same inputs as a finished report -> skipped.

    Returns {model_tag, release, report_dir, skipped, report (the report.json content), files}.
    """
    from tasks.embed import get_encoder

    log = logger or logging.getLogger("designclip.evaluate")
    started = time.perf_counter()
    folder = DataFolder(data_root)
    tag = tag or model_tag(spec)
    splits = _release_splits(folder, release)
    embedded = ensure_embeddings(data_root, release, spec, tag, splits, batch_size, device, embed_missing, log)
    lists = _lists_record(deeppatent_lists)
    inputs: dict[str, Any] = {
        "release": release_fingerprint(folder, release),
        "embeddings": embeddings_fingerprint(folder, release, tag, splits),
        "settings": {"schema": REPORT_SCHEMA, "seed": seed, "pairs_5k": pairs_5k, "probe_train_max": probe_train_max,
                     "deeppatent_lists": lists},
    }
    inputs["fingerprint"] = fingerprint(inputs)
    done = None if force else finished_report(folder, release, tag, inputs["fingerprint"])
    report_path = folder.path(layout.report_dir(release, tag))
    if done is not None:
        log.info("evaluate %s on %s: report already made from these inputs (%s)", tag, release, report_path)
        return {"model_tag": tag, "release": release, "report_dir": report_path, "skipped": True, "report": done,
                "files": {n: folder.path(layout.report_file(release, tag, n)) for n in done.get("files", [])}}

    encoder = get_encoder(spec, data_root, device, tag=tag)
    stored = read_encoder_record(folder, release, tag) or {}
    if stored.get("weights_sha256") != encoder.record().get("weights_sha256"):
        raise EmbeddingsConflict(f"the vectors under tag {tag!r} were made by other weights "
                                 f"({str(stored.get('weights_sha256'))[:12]}) than {spec.model} "
                                 f"({str(encoder.record().get('weights_sha256'))[:12]}): pick another tag")
    us_titles, loc_titles = us_design_class_titles(), locarno_class_titles()
    us_prompts = loc_prompts = None
    if encoder.has_text:
        us_prompts = encoder.encode_texts(encoder.class_prompts(us_titles))
        loc_prompts = encoder.encode_texts(encoder.class_prompts(loc_titles))
    test = load_split_vectors(folder, release, tag, "test")
    train = load_split_vectors(folder, release, tag, "train") if "train" in splits else None
    log.info("evaluate %s on %s: %d test views, %s train views", tag, release, len(test),
             len(train) if train is not None else "no")
    report = evaluate_vectors(test, train, us_prompts, loc_prompts, list(loc_titles), seed=seed, pairs_5k=pairs_5k,
                              probe_train_max=probe_train_max)
    arrays = report.pop("arrays")
    if deeppatent_lists:
        progress: CountProgress | None = None

        def on_progress(done_n: int, total: int) -> None:
            nonlocal progress
            if progress is None:
                progress = CountProgress(f"deeppatent lists {tag}", total, log, unit="images")
            progress(done_n)

        metrics, topk = evaluate_deeppatent_lists(encoder, deeppatent_lists["query_list"], deeppatent_lists["db_list"],
                                                  deeppatent_lists["image_root"], batch_size, on_progress)
        report["deeppatent_lists"] = metrics
        arrays["deeppatent_lists_topk"] = topk
    report.update({
        "model": _model_record(encoder), "release": {"version": release, "fingerprint_sha256": inputs["release"]},
        "inputs": inputs, "embedded_now": embedded, "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "seconds": round(time.perf_counter() - started, 3),
    })
    files: dict[str, bytes] = {"recall.png": recall_png([report], f"{tag} on {release} (test split)")}
    files.update(confusion_pngs(report))
    files = {"report.md": report_markdown(report, images=list(files)).encode(), **files}
    written = write_report(folder, release, tag, report, files, arrays)
    log.info("evaluate %s on %s: report written to %s", tag, release, report_path)
    return {"model_tag": tag, "release": release, "report_dir": report_path, "skipped": False,
            "report": {**report, "files": sorted(n for n in written if n != "report.json")}, "files": written}


@task(name="evaluate", task_run_name="evaluate-{release}-{tag}", cache_policy=NO_CACHE)
def evaluate_task(data_root: str, release: str, spec: EncoderSpec, seed: int = 0, pairs_5k: int = 5000,
                  deeppatent_lists: dict[str, str] | None = None, batch_size: int = 64, device: str | None = None,
                  tag: str | None = None, force: bool = False,
                  probe_train_max: int = PROBE_TRAIN_MAX) -> dict[str, Any]:
    """One model's evaluation as a Prefect task (embeds the missing splits first; a finished report is skipped)."""
    return evaluate_model(data_root, release, spec, seed=seed, pairs_5k=pairs_5k, deeppatent_lists=deeppatent_lists,
                          batch_size=batch_size, device=device, tag=tag, force=force,
                          probe_train_max=probe_train_max, logger=get_run_logger())
