"""Benchmark hygiene: a model is not scored on patents it trained on (unless allowed).

What it trained on: its training release's train/val splits, or, for a model trained on a rebuilt DeepPatent folder
(`designclip train --deeppatent DIR`), the patents of that folder's ``lists/train_patent_trn.txt``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from designclip.pipeline.evaluate.deeppatent import overlap_patents, patent_id_from_file
from designclip.pipeline.evaluate.evaluation import EvaluationError
from designclip.storage.eval_inputs import split_patents
from designclip.storage.folder import DataFolder

TRAINED_SPLITS = ("train", "val")  # the splits of a model's training release a benchmark must not share patents with
DEEPPATENT_TRAIN_LIST = "lists/train_patent_trn.txt"  # under a `designclip deeppatent build` folder


def deeppatent_training_dir(encoder: Any) -> str | None:
    """The DeepPatent folder an exported model trained on (its designclip.json `extra.deeppatent`), else None."""
    from designclip.pipeline.train.export import ExportError, read_export_meta

    record = encoder.record()
    recorded = ((record.get("export") or {}).get("deeppatent") or {}).get("deeppatent_dir")
    if recorded or not record.get("path"):
        return recorded
    try:
        meta = read_export_meta(record["path"])
    except (ExportError, OSError, ValueError):
        return None
    return ((meta.get("extra") or {}).get("deeppatent") or {}).get("deeppatent_dir")


def list_file_patents(path: str | Path) -> set[str]:
    """Patent ids of a DeepPatent-format list ("relative/path.png label" lines)."""
    out = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and (patent := patent_id_from_file(line.split()[0])):
            out.add(patent)
    return out


def _deeppatent_overlap(directory: str, scored: set[str], scored_on: str) -> dict[str, Any]:
    listed = Path(directory) / DEEPPATENT_TRAIN_LIST
    base = {"scored_on": scored_on, "scored_patents": len(scored), "training_release": None,
            "training_list": str(listed), "trained_on": f"training list {listed}"}
    if not listed.is_file():
        return {**base, "count": None, "checked": False,
                "note": f"its DeepPatent training list {listed} is not there any more: overlap not checked"}
    found = overlap_patents(scored, list_file_patents(listed))
    return {**base, "count": len(found), "checked": True, "examples": found[:10]}


def training_overlap(folder: DataFolder, encoder: Any, scored: set[str], scored_on: str) -> dict[str, Any]:
    """How many of the scored patents the model's training release holds in train/val (None: unknown)."""
    release = ((encoder.record().get("export") or {}).get("release") or {}).get("version")
    if not release and (directory := deeppatent_training_dir(encoder)):
        return _deeppatent_overlap(directory, scored, scored_on)
    base = {"scored_on": scored_on, "scored_patents": len(scored), "training_release": release,
            "trained_on": f"training release {release} (train/val)"}
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
    trained_on = overlap.get("trained_on") or f"training release {overlap['training_release']} (train/val)"
    message = (f"{tag}: its {trained_on} holds {overlap['count']} of the "
               f"{overlap['scored_patents']} patents of {overlap['scored_on']} "
               f"(e.g. {', '.join(overlap['examples'][:5])})")
    if not allow:
        fix = ("rebuild the DeepPatent folder (`designclip deeppatent build`: its training list leaves out every "
               "val/test patent) and retrain" if overlap.get("training_list") else
               "rebuild the release with the DeepPatent exclusions (the default for its weeks) and retrain")
        raise EvaluationError(f"{message}: the scores would be inflated. {fix[0].upper()}{fix[1:]}, or pass "
                              "--allow-deeppatent-overlap to score anyway (recorded as deeppatent.overlap_patents)")
    overlap["allowed"] = True
    log.warning("WARNING %s; scored anyway (--allow-deeppatent-overlap), recorded as deeppatent.overlap_patents",
                message)
