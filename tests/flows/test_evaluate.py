"""The evaluate flow on the real release v1: the tiny export beside a random-init baseline, reports and comparison."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.fixtures.evaluate import write_lists

STABLE_KEYS = ("retrieval.designclip_5k", "retrieval.all_views", "retrieval.patent_level",
               "classification.linear_probe_val", "classification.designclip_probe", "classification.prompted",
               "classification.zero_shot_heldout_template", "deeppatent.map_official", "deeppatent.map_pml",
               "deeppatent.p_at_1", "deeppatent.overlap_patents")


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
