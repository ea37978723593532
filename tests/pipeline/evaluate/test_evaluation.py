"""evaluate_vectors on vectors whose answers are known by hand: retrieval, classification and the DeepPatent split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from designclip.pipeline.common.classes import us_design_class_titles
from designclip.pipeline.evaluate.evaluation import evaluate_vectors, locarno_labels
from designclip.storage.embeddings import SplitVectors

from tests.fixtures.evaluate import LOCARNO, class_case, make_split, unit


def evaluate(test: SplitVectors, probe: SplitVectors | None = None, **kwargs) -> dict:
    return evaluate_vectors(test, probe, {}, LOCARNO, **kwargs)


# --------------------------------------------------------------------------------------------------- retrieval


def test_identical_image_and_text_vectors_retrieve_their_pair_first() -> None:
    image = np.random.default_rng(0).normal(size=(50, 32))
    report = evaluate(make_split(image, image.copy()), pairs_5k=20)
    ret = report["retrieval"]
    assert ret["pairs"] == 50 and ret["left_out"] == {}
    assert ret["all_views"]["text_to_image"] == {"1": 1.0, "5": 1.0, "10": 1.0}
    assert ret["all_views"]["image_to_text"] == {"1": 1.0, "5": 1.0, "10": 1.0}
    head = ret["designclip_5k"]  # 50 one-view patents, 20 asked: a seeded sample of 20 patents
    assert (head["pairs"], head["patents"], head["sampled"]) == (20, 20, True)
    assert head["text_to_image"]["1"] == 1.0
    assert ret["curve"]["ks"] == [1, 2, 5, 10, 20, 50]  # k up to the number of pairs (50), not 100


def test_shuffled_captions_never_retrieve_their_pair_first() -> None:
    rng = np.random.default_rng(1)
    image = rng.normal(size=(40, 64))
    derangement = np.roll(np.arange(40), 1)  # caption i is image i-1's vector: no caption matches its own image
    report = evaluate(make_split(image, image[derangement]))
    ret = report["retrieval"]["all_views"]
    assert ret["text_to_image"]["1"] == 0.0 and ret["image_to_text"]["1"] == 0.0
    # R@10 from a direct ranking (np.argsort is stable: ties -> lower index, the metric's rule)
    scores = unit(image[derangement]) @ unit(image).T
    rank = np.array([int(np.flatnonzero(np.argsort(-s, kind="stable") == i)[0]) + 1 for i, s in enumerate(scores)])
    assert ret["text_to_image"]["10"] == pytest.approx(float((rank <= 10).mean()))


def test_hand_computed_ranks_ties_and_left_out_rows() -> None:
    """4 usable pairs (ties broken by the lower index; only the paired row counts) + 2 rows that must be left out."""
    e = np.eye(4)
    image = np.stack([e[0], e[1], e[2], e[3], np.zeros(4), e[3]])
    text = np.stack([e[0], e[0], e[2] + 0.5 * e[3], e[2] + 0.1 * e[3], e[1], e[1]])
    test = make_split(image, text, image_ok=[True, True, True, True, False, True],
                      captions=["a", "b", "c", "d", "e", ""],
                      errors=[None, None, None, None, "image_unreadable: broken PNG", "caption_missing: no text"])
    ret = evaluate(test)["retrieval"]
    assert ret["pairs"] == 4
    assert ret["left_out"] == {"caption_missing": 1, "image_unreadable": 1}
    # text->image: t1 == t0 == image 0, so image 0 (lower index) comes first: rank 2; t3 prefers image 2: rank 2
    assert ret["all_views"]["text_to_image"] == {"1": 0.5, "5": 1.0, "10": 1.0}
    # image->text: image 1 scores every caption 0 -> caption 0 first (tie), image 2 prefers t3, image 3 prefers t2
    assert ret["all_views"]["image_to_text"] == {"1": 0.25, "5": 1.0, "10": 1.0}
    assert ret["all_views"]["median_rank"] == {"text_to_image": 1.5, "image_to_text": 2.0}
    assert ret["designclip_5k"]["sampled"] is False and ret["designclip_5k"]["pairs"] == 4  # one view per patent


def test_image_only_models_skip_retrieval_and_zero_shot_but_not_the_rest() -> None:
    image = np.random.default_rng(2).normal(size=(6, 8))
    report = evaluate(make_split(image, None, patents=["A", "A", "B", "B", "C", "C"], cls=[0, 1, 0, 1, 0, 1]))
    assert "image-only" in report["retrieval"]["skipped"]
    assert "image-only" in report["classification"]["prompted"]["us"]["skipped"]
    assert report["classification"]["linear_probe_val"]["us"] == {"skipped": "no val split vectors to fit the probe on"}
    assert report["deeppatent"]["views_per_query"]["1"]["queries"] == 3


def test_same_seed_same_report_and_json_clean() -> None:
    rng = np.random.default_rng(3)
    image, text = rng.normal(size=(30, 16)), rng.normal(size=(30, 16))
    test = make_split(image, text, patents=[f"P{i // 3}" for i in range(30)])
    a, b = evaluate(test, pairs_5k=10, seed=7), evaluate(test, pairs_5k=10, seed=7)
    arrays_a, arrays_b = a.pop("arrays"), b.pop("arrays")
    assert a == b and np.array_equal(arrays_a["dira_topk"], arrays_b["dira_topk"])
    json.dumps(a, allow_nan=False)  # NaN/numpy never reach report.json


# --------------------------------------------------------------------------------------------------- classification


def test_zero_shot_and_linear_probe_on_hand_made_classes() -> None:
    test, train, us_prompts, loc_prompts = class_case()
    report = evaluate_vectors(test, train, {"prompted": (us_prompts, loc_prompts)}, LOCARNO)
    cls = report["classification"]
    prompted, probe = cls["prompted"]["us"], cls["linear_probe_val"]["us"]
    assert prompted["accuracy"] == pytest.approx(0.8)  # 4 of 5 labelled rows; the cls -1 row left out
    assert prompted["left_out"] == {"unknown_class": 1} and prompted["evaluated"] == 5
    assert probe["accuracy"] == pytest.approx(0.8)  # the class-2 row that looks like class 5 is wrong
    assert probe["fit_rows"] == 20 and probe["unseen_test_classes"] == []
    assert cls["probe_split"] == ["val"]
    by_code = {r["code"]: r for r in cls["us"]["per_class"]}
    assert {k: by_code["D1"][k] for k in ("code", "title", "support", "prompted", "linear_probe_val")} == {
        "code": "D1", "title": us_design_class_titles()["D1"], "support": 2, "prompted": 1.0, "linear_probe_val": 1.0}
    assert by_code["D3"]["support"] == 2 and by_code["D3"]["prompted"] == 0.5
    assert by_code["D6"]["prompted"] == 1.0 and by_code["D2"]["support"] == 0 and by_code["D2"]["prompted"] is None
    confusion = cls["us"]["confusion"]  # classes with test views or predicted by a method (the barely trained
    pick = [confusion["codes"].index(c) for c in ("D1", "D3", "D6")]  # DesignCLIP probe predicts a few others)
    assert np.asarray(confusion["prompted"])[np.ix_(pick, pick)].tolist() == [[2, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert np.asarray(confusion["prompted"]).sum() == 5
    assert "zero_shot_heldout_template" not in cls["us"]["confusion"]  # no held-out prompt vectors given

    assert cls["locarno"]["unmatched_codes"] == {"99": 1}
    assert cls["prompted"]["locarno"]["evaluated"] == 4 and cls["prompted"]["locarno"]["accuracy"] == 1.0
    assert {r["code"]: r["support"] for r in cls["locarno"]["per_class"] if r["support"]} == {"02": 3, "07": 1}


def test_linear_probe_fits_on_a_seeded_sample_of_a_large_val_split() -> None:
    test, train, us_prompts, loc_prompts = class_case()
    a = evaluate_vectors(test, train, {"prompted": (us_prompts, loc_prompts)}, LOCARNO, probe_max=12)
    probe = a["classification"]["linear_probe_val"]["us"]
    assert (probe["fit_rows"], probe["fit_labelled"], probe["fit_sampled"]) == (12, 20, True)
    b = evaluate_vectors(test, train, {"prompted": (us_prompts, loc_prompts)}, LOCARNO, probe_max=12)
    assert b["classification"] == a["classification"]


def test_locarno_codes_map_to_the_title_list_order() -> None:
    labels, unmatched = locarno_labels(["02", "2", "02-05", "32", "", None, "xx"], LOCARNO)
    assert labels.tolist() == [1, 1, 1, LOCARNO.index("32"), -1, -1, -1]
    assert unmatched == {"xx": 1}


# --------------------------------------------------------------------------------------------------- DeepPatent


def test_deeppatent_split_protocol_and_dira_top10() -> None:
    rng = np.random.default_rng(4)
    a, b, c = rng.normal(size=(3, 16))
    image = np.stack([a, a, a, b, b, c, np.zeros(16)]) + 0.01 * rng.normal(size=(7, 16))
    test = make_split(image, image.copy(), patents=["A", "A", "A", "B", "B", "C", "A"],
                      image_ok=[True] * 6 + [False], errors=[None] * 6 + ["image_unreadable: truncated"])
    report = evaluate(test)
    dp = report["deeppatent"]
    assert dp["left_out"] == {"image_unreadable": 1}
    one = dp["views_per_query"]["1"]
    assert (one["queries"], one["database"], one["patents"], one["distractor_patents"]) == (2, 4, 3, 1)
    assert one["mAP"] == 1.0 and one["top_k"]["1"] == 1.0 and one["k_used"]["10"] == 4
    two = dp["views_per_query"]["2"]
    assert (two["queries"], two["database"]) == (3, 3)  # A gives 2 queries, B only 1 (a view stays in the database)
    arrays = report["arrays"]
    top = arrays["dira_topk"]
    assert top.dtype == np.int64 and top.shape == (2, 10) and (top[:, 4:] == -1).all()
    for q, row in zip(arrays["dira_query_keys"], top, strict=True):
        patent = test.meta.column("patent_id")[test.keys.index(q)].as_py()
        best = arrays["dira_db_keys"][row[0]]
        assert test.meta.column("patent_id")[test.keys.index(best)].as_py() == patent
    assert "test-006" not in arrays["dira_db_keys"] + arrays["dira_query_keys"]  # the unreadable view
