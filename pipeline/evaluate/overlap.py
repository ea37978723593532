"""Benchmark hygiene: a model is not scored on patents its training release held in train/val (unless allowed)."""

from __future__ import annotations

import logging
from typing import Any

from designclip.pipeline.evaluate.deeppatent import overlap_patents
from designclip.pipeline.evaluate.evaluation import EvaluationError
from designclip.storage.eval_inputs import split_patents
from designclip.storage.folder import DataFolder

TRAINED_SPLITS = ("train", "val")  # the splits of a model's training release a benchmark must not share patents with


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


def check_overlap(overlap: dict[str, Any], tag: str, allow: bool,
                  log: logging.Logger | logging.LoggerAdapter) -> None:
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
