"""evaluate_vectors on vectors whose answers are known by hand, the real DeepPatent list path, and the evaluate flow
on the real release v1 (the tiny export beside a random-init baseline)."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from designclip.pipeline.common.classes import locarno_class_titles, us_design_class_titles
from designclip.pipeline.evaluate.evaluation import EvaluationError, evaluate_vectors, locarno_labels
from designclip.pipeline.evaluate.lists import evaluate_deeppatent_lists
from designclip.storage.embeddings import EMBED_META, SplitVectors
from PIL import Image, ImageDraw

LOCARNO = list(locarno_class_titles())
STABLE_KEYS = ("retrieval.designclip_5k", "retrieval.all_views", "retrieval.patent_level",
               "classification.linear_probe_val", "classification.designclip_probe", "classification.prompted",
               "classification.zero_shot_heldout_template", "deeppatent.map_official", "deeppatent.map_pml",
               "deeppatent.p_at_1", "deeppatent.overlap_patents")
US = list(us_design_class_titles())


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def make_split(image: np.ndarray, text: np.ndarray | None = None, *, patents: list[str] | None = None,
               cls: list[int] | None = None, locarno: list[str | None] | None = None,
               image_ok: list[bool] | None = None, captions: list[str] | None = None,
               errors: list[str | None] | None = None, split: str = "test") -> SplitVectors:
    """SplitVectors with EMBED_META rows the way the embed stage writes them."""
    n = image.shape[0]
    rows = [{"row": i, "key": f"{split}-{i:03d}", "patent_id": (patents or [f"USD{i:07d}" for i in range(n)])[i],
             "title": "a thing", "fig": str(i + 1), "view": "front", "split": split,
             "cls": (cls or [0] * n)[i], "uspc_class": "D1", "locarno_class": (locarno or ["02"] * n)[i],
             "caption": (captions or [f"caption {i}" for i in range(n)])[i], "shard": f"{split}/00000.tar",
             "shard_index": i, "image_ok": (image_ok or [True] * n)[i], "error": (errors or [None] * n)[i],
             "text_ok": bool((captions or [f"caption {i}" for i in range(n)])[i])} for i in range(n)]
    return SplitVectors(unit(image), None if text is None else unit(text), pa.Table.from_pylist(rows, EMBED_META))


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


def class_case() -> tuple[SplitVectors, SplitVectors, np.ndarray, np.ndarray]:
    """US prompts = e0..e32, Locarno prompts = e33..e64; an image = its US direction + its Locarno direction."""
    dim = 70
    eye = np.eye(dim)
    us_prompts, loc_prompts = eye[:33], eye[33:65]

    def vec(us: int, loc: int) -> np.ndarray:
        return eye[us] + eye[33 + loc]

    # test rows: cls 0, 0, 2, 2 (but looks like class 5), -1, 5; Locarno 02, 2, 02-05, 99 (unknown), None, 07
    test = make_split(np.stack([vec(0, 1), vec(0, 1), vec(2, 1), vec(5, 6), vec(3, 5), vec(5, 6)]),
                      np.zeros((6, dim)), cls=[0, 0, 2, 2, -1, 5], locarno=["02", "2", "02-05", "99", None, "07"],
                      patents=["A", "A", "B", "B", "C", "C"])
    rng = np.random.default_rng(0)
    rows = [(c, loc) for c, loc in [(0, 1), (2, 1), (3, 5), (5, 6)] for _ in range(5)]
    train = make_split(np.stack([vec(c, loc) + 0.05 * rng.normal(size=dim) for c, loc in rows]), np.zeros((20, dim)),
                       cls=[c for c, _ in rows], locarno=[LOCARNO[loc] for _, loc in rows], split="val")
    return test, train, us_prompts, loc_prompts


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


def drawing(shape: str) -> Image.Image:
    img = Image.new("L", (96, 96), 255)
    draw = ImageDraw.Draw(img)
    {"circle": lambda: draw.ellipse((10, 10, 86, 86), outline=0, width=4),
     "box": lambda: draw.rectangle((20, 20, 76, 76), outline=0, width=4),
     "cross": lambda: (draw.line((0, 0, 96, 96), fill=0, width=5), draw.line((0, 96, 96, 0), fill=0, width=5))}[shape]()
    return img


@pytest.fixture(scope="module")
def tiny_encoder():
    from designclip.pipeline.embed.encoder import EncoderSpec, load_encoder

    return load_encoder(EncoderSpec("designclip-tiny"), device="cpu")


def write_lists(root: Path, queries: list[str], database: list[str]) -> tuple[Path, Path]:
    (root / "q.txt").write_text("".join(f"{q} 0\n" for q in queries))
    (root / "db.txt").write_text("".join(f"{d} 0\n" for d in database))
    return root / "q.txt", root / "db.txt"


def test_real_deeppatent_lists_score_by_patent_id(tmp_path: Path, tiny_encoder) -> None:
    images = tmp_path / "images"
    names = {}
    for patent, shape, count in (("USD0000001", "circle", 2), ("USD0000002", "box", 2), ("USD0000003", "cross", 1)):
        for i in range(1, count + 1):
            rel = f"I20200101/{patent}-20200101/{patent}-20200101-D{i:05d}.png"
            (images / rel).parent.mkdir(parents=True, exist_ok=True)
            drawing(shape).save(images / rel)
            names[(patent, i)] = rel
    q, db = write_lists(tmp_path, [names[("USD0000001", 1)], names[("USD0000002", 1)]],
                        [names[("USD0000003", 1)], names[("USD0000001", 2)], names[("USD0000002", 2)]])
    metrics, top = evaluate_deeppatent_lists(tiny_encoder, q, db, images, batch_size=2)
    assert (metrics["queries"], metrics["database"], metrics["patents"]) == (2, 3, 3)
    assert metrics["mAP"] == 1.0 and metrics["top_k"]["1"] == 1.0  # the same drawing is the nearest neighbour
    assert top.shape == (2, 10) and top[:, 0].tolist() == [1, 2] and (top[:, 3:] == -1).all()


def test_missing_and_broken_list_images_are_an_error_not_a_silent_drop(tmp_path: Path, tiny_encoder) -> None:
    images = tmp_path / "images"
    images.mkdir()
    drawing("box").save(images / "USD0000001-20200101-D00001.png")
    (images / "USD0000001-20200101-D00002.png").write_bytes(b"not a png")
    missing = [f"USD000000{i}-20200101-D00001.png" for i in range(2, 9)]
    q, db = write_lists(tmp_path, ["USD0000001-20200101-D00001.png"], ["USD0000001-20200101-D00002.png", *missing])
    with pytest.raises(EvaluationError, match=r"7 DeepPatent images .*could not be read") as err:
        evaluate_deeppatent_lists(tiny_encoder, q, db, images)
    assert "USD0000002-20200101-D00001.png" in str(err.value) and "and 2 more" in str(err.value)
    q, db = write_lists(tmp_path, ["USD0000001-20200101-D00001.png"], ["USD0000001-20200101-D00002.png"])
    with pytest.raises(EvaluationError, match=r"(?s)1 DeepPatent images \(of 2\) could not be read.*D00002.png"):
        evaluate_deeppatent_lists(tiny_encoder, q, db, images)


# --------------------------------------------------------------------------------------------------- the real release


@pytest.fixture
def eval_root(embedded_v1: dict, tmp_path: Path) -> Path:
    """A private data root: release v1 and the tiny export's embeddings (the shared root stays as it is)."""
    from designclip.storage import layout

    src, dst = Path(embedded_v1["data_root"]), tmp_path / "data"
    shutil.copytree(src / layout.release_dir("v1"), dst / layout.release_dir("v1"))
    tag_dir = layout.embed_dir("v1", embedded_v1["tag"])
    shutil.copytree(src / tag_dir, dst / tag_dir)
    return dst


def deeppatent_lists_from_release(root: Path, out: Path) -> dict[str, str]:
    """The release's test views as a DeepPatent-style image tree and lists (first view of a patent = query)."""
    views: dict[str, list[bytes]] = {}
    for tar_path in sorted((root / "releases/v1/test").glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
        for name in sorted(n for n in members if n.endswith(".json")):
            meta = json.loads(members[name])
            views.setdefault(meta["patent_id"], []).append(members[name.removesuffix(".json") + ".png"])
    queries, database = [], []
    for patent, pngs in sorted(views.items()):
        for i, png in enumerate(pngs, start=1):
            rel = f"{patent}/{patent}-20210101-D{i:05d}.png"
            (out / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.open(io.BytesIO(png)).save(out / "images" / rel)
            (queries if i == 1 and len(pngs) > 1 else database).append(rel)
    q, db = write_lists(out, queries, database)
    return {"query_list": str(q), "db_list": str(db), "image_root": str(out / "images")}


def test_evaluate_flow_on_release_v1_ours_beside_a_random_baseline(eval_root: Path, embedded_v1: dict,
                                                                  tmp_path: Path, prefect_harness) -> None:
    from designclip.flows.evaluate import evaluate_flow
    from designclip.storage.embeddings import load_split_vectors
    from designclip.storage.folder import DataFolder
    from designclip.storage.reports import read_dira_result, read_report
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    lists = deeppatent_lists_from_release(eval_root, tmp_path / "deeppatent")
    ours, base = embedded_v1["tag"], "designclip-tiny-random"
    out = evaluate_flow("v1", [embedded_v1["model"], "designclip-tiny"], data_root=str(eval_root),
                        deeppatent_lists=lists)
    assert [m["model_tag"] for m in out["models"]] == [ours, base]
    assert [m["skipped"] for m in out["models"]] == [False, False]
    folder = DataFolder(str(eval_root))
    for tag in (ours, base):
        report = read_report(folder, "v1", tag)
        assert report is not None and report["inputs"]["fingerprint"]
        assert {"report.md", "recall.png", "confusion_us.png", "dira_result.npy", "dira_keys.json",
                "deeppatent/result.npy"} <= set(report["files"])
        for name in report["files"]:
            assert (eval_root / "reports/v1" / tag / name).stat().st_size > 0
        # retrieval R@1 recomputed straight from the stored vectors (np.argmax: first maximum = lower index)
        test = load_split_vectors(folder, "v1", tag, "test")
        keep = test.image_ok & np.asarray(test.meta.column("text_ok").to_pylist())
        img, txt = test.image[keep], test.text[keep]
        r1 = float((np.argmax(txt @ img.T, axis=1) == np.arange(keep.sum())).mean())
        assert report["retrieval"]["pairs"] == int(keep.sum()) > 0
        assert report["retrieval"]["all_views"]["text_to_image"]["1"] == pytest.approx(r1)
        patents = {p for p, k in zip(test.meta.column("patent_id").to_pylist(), keep, strict=True) if k}
        assert report["retrieval"]["designclip_5k"]["pairs"] == len(patents)  # one view per test patent
        for key in STABLE_KEYS:  # the report.json contract
            section, name = key.split(".")
            assert name in report[section], key
        assert report["classification"]["probe_split"] == ["val"]
        assert report["classification"]["linear_probe_val"]["us"]["fit_rows"] > 0
        assert report["deeppatent"]["scored_on"] == "DeepPatent test lists"
        assert report["deeppatent"]["map_official"] == report["deeppatent_lists"]["mAP"]
        assert report["deeppatent"]["p_at_1"] == report["deeppatent_lists"]["top_k"]["1"]
        assert 0.0 <= report["deeppatent"]["map_pml"] <= 1.0
        assert report["deeppatent"]["overlap_patents"] is None  # neither model names a training release
        assert report["captions"]["source"] == "metadata" and report["captions"]["fallback_test_views"] == 0
        assert report["counts"]["test"]["rows"] == len(test)
        dp = report["deeppatent"]["views_per_query"]["1"]
        assert read_dira_result(folder, "v1", tag).shape == (dp["queries"], 10)
        lists_top = read_dira_result(folder, "v1", tag, lists=True)
        assert lists_top.shape == (report["deeppatent_lists"]["queries"], 10)
    assert read_report(folder, "v1", base)["embedded_now"] == ["test", "val"]  # the baseline was embedded first
    # the untrained export and the random-init baseline share their seed-0 CLIP towers (the export adds heads): their
    # caption vectors are the same; their image vectors differ only by the export's training-view preprocessing
    mine, theirs = out["reports"]
    assert mine["model"]["weights_sha256"] != theirs["model"]["weights_sha256"]
    np.testing.assert_allclose(load_split_vectors(folder, "v1", ours, "test").text,
                               load_split_vectors(folder, "v1", base, "test").text, atol=1e-5)
    assert read_report(folder, "v1", ours)["embedded_now"] == []

    compare = Path(out["comparison"]["markdown"]).read_text()
    assert f"| {ours} (ours) |" in compare and f"| {base} (baseline) |" in compare
    assert Path(out["comparison"]["plot"]).stat().st_size > 0
    assert "| DesignCLIP ViT-B (published, other split) | – | 29.75 | 39.91 |" in compare
    with get_client(sync_client=True) as client:
        for key, kind in ((f"evaluate-v1-{ours}", "markdown"), ("evaluate-v1-compare", "markdown"),
                          ("evaluate-v1-table", "table"), (f"evaluate-v1-{ours}-recall", "image")):
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            assert found and found[0].type == kind, key
    print("\n" + (eval_root / "reports/v1" / ours / "report.md").read_text())
    print("\n" + compare)

    again = evaluate_flow("v1", [embedded_v1["model"], "designclip-tiny"], data_root=str(eval_root),
                          deeppatent_lists=lists)
    assert [m["skipped"] for m in again["models"]] == [True, True]
    assert again["reports"][0]["retrieval"] == out["reports"][0]["retrieval"]
