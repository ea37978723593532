"""The paper's protocols: DesignCLIP's one-view-per-patent retrieval, val-split probes (and DesignCLIP's probe),
prompted vs held-out-template zero-shot, both DeepPatent mAPs, sheets preprocessed like training views, the real
DeepPatent lists and the training-overlap refusal."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.evaluate.classify import designclip_probe
from designclip.pipeline.evaluate.deeppatent import (
    deeppatent_eval_by_patent,
    map_at_max_bin_count,
    overlap_patents,
    read_deeppatent_lists,
    sheet_view,
)
from designclip.pipeline.evaluate.evaluation import EvaluationError, evaluate_vectors
from designclip.pipeline.evaluate.lists import encode_sheets, list_patents
from designclip.pipeline.release.exclusions import deeppatent_lists
from designclip.pipeline.train.data import decode_image
from PIL import Image, ImageDraw

from tests.conftest import patent_folder
from tests.evaluate.test_evaluate import LOCARNO, class_case, make_split, unit

DATA = Path(__file__).resolve().parents[1] / "data" / "deeppatent"


# --------------------------------------------------------------------------------------------------- retrieval


def test_designclip_protocol_one_view_per_patent_without_fallback_captions() -> None:
    """Patent A: FIG. 1 front, FIG. 2 perspective -> FIG. 2 is its view; B: FIG. 10 and FIG. 2 -> FIG. 2; C's only
    view has a fallback caption -> C is left out of the headline and counted."""
    e = np.eye(8)
    image = np.stack([e[0], e[1], e[2], e[3], e[4]])
    # caption of A/FIG.1 equals A/FIG.2's image: a miss for the paired-row rule, a hit at patent level
    text = np.stack([e[1], e[1], e[2], e[3], e[4]])
    test = make_split(image, text, patents=["A", "A", "B", "B", "C"])
    meta = test.meta
    figs, views = ["1", "2", "10", "2", "1"], ["front", "front perspective", "top", "left", "front"]
    test.meta = meta.set_column(meta.schema.get_field_index("fig"), "fig", [figs]) \
        .set_column(meta.schema.get_field_index("view"), "view", [views])
    fallback = np.array([False, False, False, False, True])
    ret = evaluate_vectors(test, None, {}, LOCARNO, caption_fallback=fallback)["retrieval"]
    head = ret["designclip_5k"]
    assert (head["pairs"], head["patents"], head["sampled"]) == (2, 2, False)
    assert head["left_out"] == {"metadata_fallback_caption": 1}
    assert head["text_to_image"]["1"] == 1.0  # A/FIG.2 and B/FIG.2 captions find their images
    every = ret["all_views"]
    assert every["pairs"] == 5 and every["metadata_fallback_captions"] == 1
    assert every["text_to_image"]["1"] == pytest.approx(0.8)  # A/FIG.1's caption ranks A/FIG.2's image first
    assert ret["patent_level"]["text_to_image"]["1"] == 1.0  # ... which is a hit at patent level


def test_designclip_protocol_samples_patents_with_the_seed() -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(30, 16))
    test = make_split(image, image + 0.1 * rng.normal(size=(30, 16)), patents=[f"P{i // 2:02d}" for i in range(30)])
    a = evaluate_vectors(test, None, {}, LOCARNO, pairs_5k=6, seed=3)["retrieval"]["designclip_5k"]
    b = evaluate_vectors(test, None, {}, LOCARNO, pairs_5k=6, seed=3)["retrieval"]["designclip_5k"]
    c = evaluate_vectors(test, None, {}, LOCARNO, pairs_5k=6, seed=4)["retrieval"]["designclip_5k"]
    assert (a["pairs"], a["patents"], a["sampled"], a["requested"]) == (6, 6, True, 6)
    assert a == b and c["seed"] == 4


# --------------------------------------------------------------------------------------------------- classification


def test_probes_refuse_the_train_split() -> None:
    test, probe, us_prompts, loc_prompts = class_case()
    train = make_split(probe.image, None, cls=probe.meta.column("cls").to_pylist(), split="train")
    with pytest.raises(EvaluationError, match="trained on overstates it; pass the val split"):
        evaluate_vectors(test, train, {"prompted": (us_prompts, loc_prompts)}, LOCARNO)


def test_designclip_probe_is_one_linear_layer_trained_with_adam_as_published() -> None:
    rng = np.random.default_rng(0)
    centres = 3.0 * np.eye(8)[:3]
    y = np.repeat(np.arange(3), 50)
    x = centres[y] + 0.3 * rng.normal(size=(150, 8))
    tx = centres[[0, 1, 2, 2]] + 0.3 * rng.normal(size=(4, 8))
    a = designclip_probe(x, y, tx, np.array([0, 1, 2, -1]), 33)
    assert a["settings"] == {"epochs": 5, "batch_size": 32, "lr": 1e-4, "optimizer": "Adam", "seed": 0}
    assert a["steps"] == 5 * 5  # ceil(150 / 32) batches per epoch, 5 epochs
    assert a["evaluated"] == 3 and a["left_out"] == 1
    again = designclip_probe(x, y, tx, np.array([0, 1, 2, -1]), 33)
    assert again["predictions"].tolist() == a["predictions"].tolist()  # seeded init and batch order
    learned = designclip_probe(x, y, tx, np.array([0, 1, 2, -1]), 33, lr=0.05)  # the same loop, a bigger step
    assert learned["accuracy"] == 1.0


def test_prompted_and_heldout_template_are_separate_methods() -> None:
    test, val, us_prompts, loc_prompts = class_case()
    wrong = np.roll(us_prompts, 1, axis=0)  # the held-out template's vectors point at the next class
    cls = evaluate_vectors(test, val, {"prompted": (us_prompts, loc_prompts),
                                       "zero_shot_heldout_template": (wrong, loc_prompts)}, LOCARNO,
                           prompt_info={"prompted": {"template": "a patent drawing of {title}",
                                                     "trained_prompts": True}})["classification"]
    assert cls["prompted"]["us"]["accuracy"] == pytest.approx(0.8)
    assert cls["zero_shot_heldout_template"]["us"]["accuracy"] == 0.0
    assert cls["prompted"]["trained_prompts"] is True and "a sketch of" in cls["zero_shot_heldout_template"][
        "protocol"]
    assert cls["designclip_probe"]["us"]["fit_rows"] == 20 and cls["designclip_probe"]["us"]["steps"] == 5


# --------------------------------------------------------------------------------------------------- DeepPatent


def test_both_map_definitions_on_a_hand_checked_case() -> None:
    """Query 0 (patent P): ranked P1? no: Q, P, P -> official AP (1/2 + 2/3) / 2; pml divides by min(R, k) = 2 too.
    Query 1 (patent Q, 3 relevant, k = max_bin_count = 3): Q, Q, P -> official (1 + 1 + 3/5) / 3, pml 2 / 3."""
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    db = unit(np.array([[0.9, 0.1], [0.8, 0.6], [0.1, 0.9], [0.7, 0.7], [0.2, 0.98]]))
    qp, dbp = ["P", "Q"], ["Q", "P", "Q", "P", "Q"]
    pml = map_at_max_bin_count(q, db, qp, dbp)
    assert pml == pytest.approx(((0.5 + 2 / 3) / 2 + 2 / 3) / 2)  # 0.625
    official = deeppatent_eval_by_patent(q, db, qp, dbp)
    # query 0 full ranking: Q .994, P .8, P .707, Q .2, Q .11 -> P at 2, 3; query 1: Q .994, Q .98, P .707, P .6, Q .11
    assert official["mAP"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + (1 + 1 + 3 / 5) / 3) / 2)
    assert official["top_k"][1] == 0.5  # P@1: query 0's best is patent Q


def test_the_real_deeppatent_list_slice_reads_by_patent() -> None:
    query_files, db_files, query_patents, db_patents = read_deeppatent_lists(
        DATA / "test_query_patent.head.txt", DATA / "test_db_patent.head.txt", "/images", check_images=False)
    assert len(query_files) == 12 and len(db_files) == 32
    assert query_files[0] == "/images/I20181127/USD0834581-20181127/USD0834581-20181127-D00001.png"
    assert query_patents[:3] == ["USD0834581", "USD0834581", "USD0807264"]  # line 3 has a second column of 2
    assert set(query_patents) == set(db_patents) and len(set(query_patents)) == 6
    packaged = next(e for e in deeppatent_lists() if e.name == "deeppatent-test")
    assert list_patents(DATA / "test_query_patent.head.txt", DATA / "test_db_patent.head.txt") <= set(packaged.patents)


def portrait_sheet() -> bytes:
    """A 1000 x 1400 sheet with drawing lines near its top and bottom edges (where a centre crop cuts)."""
    sheet = Image.new("L", (1000, 1400), 255)
    draw = ImageDraw.Draw(sheet)
    draw.rectangle((300, 40, 700, 1360), outline=0, width=24)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def tiny_encoder():
    from designclip.pipeline.embed.encoder import EncoderSpec, load_encoder

    return load_encoder(EncoderSpec("designclip-tiny"), device="cpu")


def test_sheets_are_cut_and_squared_like_training_views(tiny_encoder, tmp_path: Path) -> None:
    view = np.asarray(sheet_view(portrait_sheet(), size=512).convert("L"))
    rows = np.flatnonzero((view < 128).any(axis=1))
    assert view.shape == (512, 512) and rows[0] < 30 and rows[-1] > 482  # the whole drawing, with a 3 % margin
    raw = tiny_encoder.transform(decode_image(portrait_sheet()))[0].numpy()  # resize + centre crop of the sheet
    cut = tiny_encoder.transform(sheet_view(portrait_sheet(), 512))[0].numpy()
    edges = lambda t: int(((t < (t.max() + t.min()) / 2).sum(axis=1) > 8).sum())  # noqa: E731 rows of a long dark run
    assert edges(raw) == 0 and edges(cut) >= 2  # the centre crop lost the top and bottom edges; the square kept both
    # a real sample sheet (TIFF -> PNG, as DeepPatent stores them) goes through the same path
    tif = patent_folder("USD0907292") / "USD0907292-20210105-D00001.TIF"
    png = io.BytesIO()
    Image.open(tif).convert("L").save(png, format="PNG")
    (tmp_path / "real.png").write_bytes(png.getvalue())
    (tmp_path / "portrait.png").write_bytes(portrait_sheet())
    files = [str(tmp_path / "real.png"), str(tmp_path / "portrait.png")]
    vectors, bad = encode_sheets(tiny_encoder, files, batch_size=2, size=512, margin=0.03)
    assert bad == []
    expected = tiny_encoder.encode_images([sheet_view(Path(f).read_bytes(), 512) for f in files])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert not np.allclose(vectors[1], tiny_encoder.encode_images([decode_image(portrait_sheet())])[0], atol=1e-3)


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


def test_the_patentclip_baseline_is_real_loading_code_that_fails_clearly_offline(embedded_v1: dict,
                                                                                monkeypatch) -> None:
    import huggingface_hub.constants
    from designclip.pipeline.embed.encoder import EncoderError, EncoderSpec
    from designclip.pipeline.evaluate.driver import evaluate_model

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no retries against an absent network
    with pytest.raises(EncoderError, match=r"could not load hf-hub:patentclip/PatentCLIP_Vit_B.*cannot be downloaded "
                                           r"offline"):
        evaluate_model(embedded_v1["data_root"], "v1", EncoderSpec("hf-hub:patentclip/PatentCLIP_Vit_B"))
