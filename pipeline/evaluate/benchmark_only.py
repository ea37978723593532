"""DeepPatent's benchmark on its own: a model scored on the rebuilt lists and images, with no release of ours.

Higuchi's model is trained straight from a `designclip deeppatent build` folder (`designclip train --deeppatent`), so
its score needs no release: `designclip evaluate --deeppatent-lists DIR --deeppatent-images DIR --model RUN` without
`--release` lands here. The report goes to `reports/@deeppatent/<model tag>/` (`@`: never a release's name).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

from designclip.pipeline.common.stage import Logger, Progress, no_progress
from designclip.pipeline.embed.encoder import EncoderSpec, model_tag
from designclip.pipeline.embed.encoder_cache import get_encoder
from designclip.pipeline.evaluate.benchmark import benchmark_patents, score_benchmark
from designclip.pipeline.evaluate.overlap import check_overlap, training_overlap
from designclip.pipeline.evaluate.prompts import model_record
from designclip.pipeline.evaluate.ranking_sheet import ranking_pictures
from designclip.pipeline.evaluate.report import benchmark_lines
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.reports import REPORT_JSON, write_report

BENCHMARK_ONLY = f"{layout.GROWN_MARK}deeppatent"
"""The report folder's release part: `reports/@deeppatent/<tag>/` holds benchmark-only reports."""


def benchmark_markdown(report: dict[str, Any], images: list[str] | None = None) -> str:
    """The report's page: the model, what it was scored on, both mAPs, P@1 and top-k beside the published rows,
    then the ranking pictures."""
    bench, overlap = report["deeppatent_benchmark"], report.get("overlap") or {}
    lines = [f"# {report['model'].get('tag') or report['model'].get('model')} on the DeepPatent benchmark", "",
             f"Lists: `{bench['lists_dir']}`; images: `{bench['image_root']}`; "
             f"trained on a scored patent: {overlap.get('count', 'unknown')}.", ""]
    pictures = [f"![{name}]({name})" for name in images or []]
    return "\n".join([*lines, *benchmark_lines(bench), *pictures]) + "\n"


def evaluate_benchmark_only(data_root: str, model: str, lists_dir: str | Path, image_root: str | Path, *,
                            pretrained: str | None = None, batch_size: int = 64, device: str | None = None,
                            allow_overlap: bool = False, skip_missing: bool = False, logger: Logger | None = None,
                            progress: Progress = no_progress) -> dict[str, Any]:
    """Score `model` on every split of the lists folder and write its report; returns report.json's content.

    `skip_missing`: lines whose image is not under `image_root` are left out (and counted) instead of an error.
    """
    log = logger or logging.getLogger("designclip.evaluate")
    started, folder = time.perf_counter(), DataFolder(data_root)
    spec = EncoderSpec(model, pretrained)
    tag = model_tag(spec)
    encoder = get_encoder(spec, folder.url, device, tag=tag)
    overlap = training_overlap(folder, encoder, benchmark_patents(lists_dir), "the DeepPatent benchmark lists")
    check_overlap(overlap, tag, allow_overlap, log)
    bench, tops = score_benchmark(encoder, lists_dir, image_root, batch_size, progress,
                                  skip_missing=skip_missing)
    report = {"model": {**model_record(encoder), "tag": tag}, "release": {"version": BENCHMARK_ONLY},
              "deeppatent_benchmark": bench, "deeppatent_lists": bench["splits"]["test"], "overlap": overlap,
              "created_at": dt.datetime.now(dt.UTC).isoformat(), "seconds": round(time.perf_counter() - started, 3)}
    pictures = ranking_pictures(bench, tops, tag)
    files = {"report.md": benchmark_markdown(report, list(pictures)).encode(), **pictures}
    written = write_report(folder, BENCHMARK_ONLY, tag, report, files, {"deeppatent_lists_topk": tops["test"]})
    log.info("DeepPatent benchmark of %s: test mAP %.4f (official), %.4f (PML); report in %s", tag,
             bench["splits"]["test"].get("mAP", float("nan")), bench["splits"]["test"].get("mAP_pml", float("nan")),
             folder.path(layout.report_dir(BENCHMARK_ONLY, tag)))
    return {**report, "files": sorted(n for n in written if n != REPORT_JSON),
            "report_dir": folder.path(layout.report_dir(BENCHMARK_ONLY, tag))}
