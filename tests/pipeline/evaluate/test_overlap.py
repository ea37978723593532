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


def test_a_model_trained_on_a_deeppatent_folder_is_checked_against_its_training_list(tmp_path) -> None:
    import json

    from designclip.pipeline.evaluate.overlap import check_overlap, training_overlap
    from designclip.pipeline.train.export import EXPORT_FORMAT, META_FILE
    from designclip.storage.folder import DataFolder

    build = tmp_path / "deeppatent"
    (build / "lists").mkdir(parents=True)
    (build / "lists" / "train_patent_trn.txt").write_text(
        "I20180102/USD0807001-20180102/USD0807001-20180102-D00001.png 1\n"
        "I20180102/USD0807001-20180102/USD0807001-20180102-D00002.png 1\n"
        "I20180109/USD0807264-20180109/USD0807264-20180109-D00004.png 2\n")
    export = tmp_path / "models" / "higuchi"
    export.mkdir(parents=True)
    (export / META_FILE).write_text(json.dumps({"format": EXPORT_FORMAT, "extra": {
        "run": "higuchi", "deeppatent": {"deeppatent_dir": str(build), "samples": 3, "patents": 2}}}))

    class Exported:
        def record(self) -> dict:
            return {"path": str(export), "export": {"run": "higuchi", "release": None, "steps": 5}}

    folder = DataFolder(tmp_path / "data")
    clean = training_overlap(folder, Exported(), {"USD0834581", "USD0810412"}, "the DeepPatent benchmark lists")
    assert (clean["count"], clean["checked"], clean["training_list"]) == (0, True, str(build / "lists" /
                                                                                     "train_patent_trn.txt"))
    seen = training_overlap(folder, Exported(), {"USD0834581", "USD0807264"}, "the DeepPatent benchmark lists")
    assert (seen["count"], seen["examples"]) == (1, ["USD0807264"])
    with pytest.raises(EvaluationError, match=r"its training list .*train_patent_trn.txt holds 1 of the 2 patents.*"
                                              r"Rebuild the DeepPatent folder"):
        check_overlap(seen, "higuchi", allow=False, log=logging.getLogger("test"))
    (build / "lists" / "train_patent_trn.txt").unlink()
    gone = training_overlap(folder, Exported(), {"USD0807264"}, "the DeepPatent benchmark lists")
    assert (gone["count"], gone["checked"]) == (None, False) and "not there any more" in gone["note"]
