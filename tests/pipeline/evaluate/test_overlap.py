"""Benchmark hygiene: patents the model's training release held in train/val are refused, or recorded when allowed."""

from __future__ import annotations

import logging

import pytest
from designclip.pipeline.evaluate.deeppatent import overlap_patents
from designclip.pipeline.evaluate.evaluation import EvaluationError


class _Encoder:
    """Only what the overlap check reads: the export record naming the training release."""

    def __init__(self, release: str | None) -> None:
        self.release = release

    def record(self) -> dict:
        return {"export": {"run": "r", "release": {"version": self.release} if self.release else None, "steps": 3}}


def test_a_benchmark_the_model_trained_on_is_refused_or_recorded(embedded_v1: dict) -> None:
    from designclip.pipeline.evaluate.overlap import check_overlap, training_overlap
    from designclip.storage.eval_inputs import split_patents
    from designclip.storage.folder import DataFolder

    folder = DataFolder(embedded_v1["data_root"])
    train = split_patents(folder, "v1", ["train"])
    test = split_patents(folder, "v1", ["test"])
    assert train and test and not train & test
    clean = training_overlap(folder, _Encoder("v1"), test, "the v1 test split")
    assert (clean["count"], clean["checked"]) == (0, True)
    scored = set(sorted(train)[:3]) | set(sorted(test)[:2])
    seen = training_overlap(folder, _Encoder("v1"), scored, "the DeepPatent lists")
    assert seen["count"] == 3 and seen["examples"] == overlap_patents(scored, train)
    log = logging.getLogger("test")
    with pytest.raises(EvaluationError, match=r"holds 3 of the 5 patents of the DeepPatent lists.*--allow-deeppatent"):
        check_overlap(seen, "m", allow=False, log=log)
    check_overlap(seen, "m", allow=True, log=log)
    assert seen["allowed"] is True
    unknown = training_overlap(folder, _Encoder(None), scored, "the DeepPatent lists")
    assert unknown["count"] is None and "unknown" in unknown["note"]
