"""The evaluate task: one model's stored vectors (embedded first when missing) -> its report folder."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from typing import Any

from designclip.pipeline.common.classes import locarno_class_titles, us_design_class_titles
from designclip.pipeline.embed.encoder import EncoderSpec, model_tag
from designclip.pipeline.evaluate.classes import HELDOUT_TEMPLATE, PROBE_MAX
from designclip.pipeline.evaluate.deeppatent import overlap_patents
from designclip.pipeline.evaluate.evaluation import (
    REPORT_SCHEMA,
    EvaluationError,
    evaluate_vectors,
    set_deeppatent_keys,
)
from designclip.pipeline.evaluate.lists import evaluate_deeppatent_lists, list_patents
from designclip.pipeline.evaluate.report import confusion_pngs, recall_png, report_markdown
from designclip.storage import layout
from designclip.storage.embeddings import (
    EmbeddingsConflict,
    EmbeddingsMissing,
    embedded_splits,
    embeddings_fingerprint,
    load_split_vectors,
    read_encoder_record,
    release_fingerprint,
)
from designclip.storage.eval_inputs import caption_fallback, caption_provenance, render_size, split_patents
from designclip.storage.folder import DataFolder
from designclip.storage.reports import fingerprint, finished_report, write_report
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

Logger = logging.Logger | logging.LoggerAdapter
EVAL_SPLITS = ("test", "val")  # test is evaluated; val fits the probes (never train: the encoder saw it)
TRAINED_SPLITS = ("train", "val")  # the splits of a model's training release a benchmark must not share patents with
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
    from designclip.tasks.embed import embed_release

    log.info("evaluate %s: embedding the %s split(s) of release %s first", tag, ",".join(missing), release)
    summary = embed_release(data_root, release, spec, splits=missing, batch_size=batch_size, device=device,
                            logger=log, tag=tag)
    if summary["failed_shards"]:
        raise EmbeddingsMissing(f"embedding failed for {', '.join(summary['failed_shards'])}")
    return missing


def _model_record(encoder: Any) -> dict[str, Any]:
    record = encoder.record()
    keep = ("tag", "dim", "has_text", "prompt_template", "spec", "kind", "init", "model_name", "weights_sha256",
            "export")
    return {k: record.get(k) for k in keep}


def trained_prompts(encoder: Any) -> bool:
    """True when the model trained with the class-prompt term (its prompt accuracy is then not zero-shot)."""
    info = encoder.record()
    if not str(info.get("kind", "")).startswith("designclip-clip") or not (info.get("export") or {}).get("steps"):
        return False
    from designclip.pipeline.train.export import read_export_meta

    weights = read_export_meta(info["path"]).get("loss_weights")
    return weights is None or float(weights.get("prompt", 0.0)) > 0.0


def class_prompt_vectors(encoder: Any) -> tuple[dict[str, tuple[Any, Any]], dict[str, dict[str, Any]]]:
    """(prompt vectors per method, what each used): the model's own template and the held-out one."""
    from designclip.pipeline.train.model import class_prompts

    if not encoder.has_text:
        return {}, {}
    us, loc = us_design_class_titles(), locarno_class_titles()
    own = encoder.prompt_template or encoder.record().get("prompt_template")
    trained = trained_prompts(encoder)
    prompts = {"prompted": (encoder.encode_texts(encoder.class_prompts(us)),
                            encoder.encode_texts(encoder.class_prompts(loc)))}
    info: dict[str, dict[str, Any]] = {
        "prompted": {"template": own, "trained_prompts": trained,
                     "label": "prompted (trained prompts)" if trained else "zero-shot (model's template, untrained)"},
        "zero_shot_heldout_template": {"template": HELDOUT_TEMPLATE}}
    if own != HELDOUT_TEMPLATE:
        prompts["zero_shot_heldout_template"] = (encoder.encode_texts(class_prompts(us, HELDOUT_TEMPLATE)),
                                                 encoder.encode_texts(class_prompts(loc, HELDOUT_TEMPLATE)))
    else:
        info["zero_shot_heldout_template"]["skipped"] = "the model trained with the held-out template itself"
    return prompts, info


def training_overlap(folder: DataFolder, encoder: Any, scored: set[str], scored_on: str) -> dict[str, Any]:
    """How many of the scored patents the model's training release holds in train/val (None: unknown)."""
    release = ((encoder.record().get("export") or {}).get("release") or {}).get("version")
    base = {"scored_on": scored_on, "scored_patents": len(scored), "training_release": release}
    if not release:
        return {**base, "count": None, "checked": False,
                "note": "not trained by this project: its training data is unknown (check its paper)"}
    try:
        trained = split_patents(folder, release, TRAINED_SPLITS)
    except FileNotFoundError:
        return {**base, "count": None, "checked": False,
                "note": f"training release {release} is not under {folder.url}: overlap not checked"}
    found = overlap_patents(scored, trained)
    return {**base, "count": len(found), "checked": True, "examples": found[:10]}


def check_overlap(overlap: dict[str, Any], tag: str, allow: bool, log: Logger) -> None:
    """Refuse to score a benchmark the model trained on, unless allowed (then say it loudly)."""
    if not overlap.get("count"):
        return
    message = (f"{tag}: its training release {overlap['training_release']} holds {overlap['count']} of the "
               f"{overlap['scored_patents']} patents of {overlap['scored_on']} in train/val "
               f"(e.g. {', '.join(overlap['examples'][:5])})")
    if not allow:
        raise EvaluationError(f"{message}: the scores would be inflated. Rebuild the release with the DeepPatent "
                              "exclusions (the default for its weeks) and retrain, or pass --allow-deeppatent-overlap "
                              "to score anyway (recorded as deeppatent.overlap_patents)")
    overlap["allowed"] = True
    log.warning("WARNING %s; scored anyway (--allow-deeppatent-overlap), recorded as deeppatent.overlap_patents",
                message)


def evaluate_model(data_root: str, release: str, spec: EncoderSpec, *, seed: int = 0, pairs_5k: int = 5000,
                   deeppatent_lists: dict[str, str] | None = None, batch_size: int = 64, device: str | None = None,
                   tag: str | None = None, embed_missing: bool = True, force: bool = False,
                   probe_max: int = PROBE_MAX, allow_deeppatent_overlap: bool = False,
                   logger: Logger | None = None) -> dict[str, Any]:
    """Evaluate one model on a release and write its report folder; same inputs as a finished report -> skipped.

    Returns {model_tag, release, report_dir, skipped, report (the report.json content), files}.
    """
    from designclip.tasks.embed import get_encoder

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
        "settings": {"schema": REPORT_SCHEMA, "seed": seed, "pairs_5k": pairs_5k, "probe_max": probe_max,
                     "deeppatent_lists": lists, "allow_deeppatent_overlap": allow_deeppatent_overlap},
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
    test = load_split_vectors(folder, release, tag, "test")
    val = load_split_vectors(folder, release, tag, "val") if "val" in splits else None
    if deeppatent_lists:
        scored, scored_on = list_patents(deeppatent_lists["query_list"], deeppatent_lists["db_list"]), \
            "the DeepPatent lists"
    else:
        scored, scored_on = {p for p in test.meta.column("patent_id").to_pylist() if p}, f"the {release} test split"
    overlap = training_overlap(folder, encoder, scored, scored_on)
    check_overlap(overlap, tag, allow_deeppatent_overlap, log)
    prompts, prompt_info = class_prompt_vectors(encoder)
    log.info("evaluate %s on %s: %d test views, %s val views", tag, release, len(test),
             len(val) if val is not None else "no")
    report = evaluate_vectors(test, val, prompts, list(locarno_class_titles()), seed=seed, pairs_5k=pairs_5k,
                              probe_max=probe_max, caption_fallback=caption_fallback(folder, release, test.keys),
                              prompt_info=prompt_info)
    arrays = report.pop("arrays")
    if deeppatent_lists:
        progress: CountProgress | None = None

        def on_progress(done_n: int, total: int) -> None:
            nonlocal progress
            if progress is None:
                progress = CountProgress(f"deeppatent lists {tag}", total, log, unit="images")
            progress(done_n)

        metrics, topk = evaluate_deeppatent_lists(encoder, deeppatent_lists["query_list"], deeppatent_lists["db_list"],
                                                  deeppatent_lists["image_root"], batch_size, on_progress,
                                                  size=render_size(folder, release))
        report["deeppatent_lists"] = metrics
        arrays["deeppatent_lists_topk"] = topk
    set_deeppatent_keys(report, overlap)
    report.update({
        "model": _model_record(encoder), "release": {"version": release, "fingerprint_sha256": inputs["release"]},
        "captions": {**caption_provenance(folder, release),
                     "fallback_test_views": (report["retrieval"].get("all_views") or {}).get(
                         "metadata_fallback_captions", 0)},
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
                  tag: str | None = None, force: bool = False, probe_max: int = PROBE_MAX,
                  allow_deeppatent_overlap: bool = False) -> dict[str, Any]:
    """One model's evaluation as a Prefect task (embeds the missing splits first; a finished report is skipped)."""
    return evaluate_model(data_root, release, spec, seed=seed, pairs_5k=pairs_5k, deeppatent_lists=deeppatent_lists,
                          batch_size=batch_size, device=device, tag=tag, force=force, probe_max=probe_max,
                          allow_deeppatent_overlap=allow_deeppatent_overlap, logger=get_run_logger())
