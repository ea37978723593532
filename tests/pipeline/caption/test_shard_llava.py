"""The caption stage with the llava backend (a tiny random LLaVA saved to disk) on real rendered shards."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from designclip.pipeline.caption.driver import (
    CaptionerSpec,
    caption_shard_file,
    load_captioner,
    prepare_set,
    unload_captioners,
)
from designclip.pipeline.caption.tiny_llava import build_tiny_llava
from designclip.storage import layout
from designclip.storage.captions import ShardRef, rendered_shards
from designclip.storage.folder import DataFolder

from tests.fixtures.release import clone_week, read_samples

PROFILE = "px512"
BAD_WEEK = dt.date(2021, 6, 1)
BAD_KEY = "USD0915080_f2"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


def spec(folder: Path, batch_size: int) -> CaptionerSpec:
    return CaptionerSpec("llava", str(folder), batch_size, max_new_tokens=12, device="cpu", loader_workers=0)


class Crash(RuntimeError):
    pass


def test_bad_image_is_recorded_resume_matches_and_release_falls_back(data: Path, tiny_folder: Path) -> None:
    from designclip.pipeline.release.driver import build_release

    # a week cloned from 2021-04-06 (USD0915080, 2 views) whose second view's PNG is cut in half
    clone_week(data, dt.date(2021, 4, 6), BAD_WEEK, png_edit=lambda key, png: png[: len(png) // 2]
               if key == BAD_KEY else png)
    folder = DataFolder(data)
    refs = rendered_shards(folder, PROFILE)
    try:
        captioner = load_captioner(spec(tiny_folder, 2))
        cset = prepare_set(str(data), PROFILE, captioner)
        assert cset.startswith("llava-") and "-view-1-" in cset

        class CrashAfter:  # the same captioner, dying after 5 captions of the first shard
            backend, model_id, prompt_version = captioner.backend, captioner.model_id, captioner.prompt_version
            settings = captioner.settings

            def caption(self, requests):
                for i, r in enumerate(captioner.caption(requests)):
                    if i == 5:
                        raise Crash("boom")
                    yield r

        with pytest.raises(Crash):
            caption_shard_file(str(data), PROFILE, refs[0], CrashAfter(), cset, checkpoint_rows=2)
        resumed = caption_shard_file(str(data), PROFILE, refs[0], captioner, cset)
        assert resumed["resumed_rows"] == 5 and resumed["captioned"] == resumed["samples"] == 8
        stats = [resumed] + [caption_shard_file(str(data), PROFILE, r, captioner, cset) for r in refs[1:]]
        one_go = load_captioner(spec(tiny_folder, 8))
        reference = [r.caption for r in one_go.caption(_requests(folder, refs[0]))]
    finally:
        unload_captioners()
    rows = pq.read_table(data / layout.caption_file(PROFILE, cset, refs[0].week, 0)).to_pylist()
    assert [r["caption"] for r in rows] == reference, "a resumed shard equals one captioned in one go (batch 8)"
    assert all(r["caption"] and r["model_id"] == str(tiny_folder) and r["prompt_version"] == "view-1" for r in rows)
    assert all("USD" not in r["caption"] for r in rows) and all("ASSISTANT" not in r["caption"] for r in rows)

    bad = stats[-1]
    assert bad["week"] == BAD_WEEK.isoformat() and bad["failures"] == 1 and bad["captioned"] == 1
    assert bad["failures_by_reason"] == {"image_unreadable": 1} and bad["failure_details"][0]["key"] == BAD_KEY
    release = build_release("llava1", str(data), ratios="60/20/20", caption_source="llava")  # the backend's one set
    assert release["fingerprint"]["captions"]["caption_set"] == cset
    captions = {r["key"]: r["caption"] for p in data.glob(f"captions/{PROFILE}/{cset}/*/*.parquet")
                if BAD_WEEK.strftime("%Y%m%d") not in str(p) for r in pq.read_table(p).to_pylist()}
    samples = {k: m for tar in (data / layout.release_dir("llava1")).glob("*/*.tar") for k, m in read_samples(tar)}
    assert len(samples) == 20 and release["duplicates"] == 2, "the cloned week's patent is a duplicate, dropped"
    assert {k: m["txt"].decode() for k, m in samples.items()} == captions
    assert {json.loads(m["json"])["caption_source"] for m in samples.values()} == {cset}


def test_a_failed_caption_falls_back_to_the_metadata_caption_in_the_release(data: Path, tiny_folder: Path) -> None:
    from designclip.pipeline.release.driver import build_release

    clone_week(data, dt.date(2021, 4, 6), BAD_WEEK, png_edit=lambda key, png: png[:100] if key == BAD_KEY else png)
    for day in ("2021-03-23", "2021-04-06", "2021-05-04"):  # release only the bad week
        marker = data / "_stats" / "render" / PROFILE / f"I{day.replace('-', '')}.json"
        marker.unlink()
    folder = DataFolder(data)
    (ref,) = rendered_shards(folder, PROFILE)
    try:
        captioner = load_captioner(spec(tiny_folder, 4))
        cset = prepare_set(str(data), PROFILE, captioner)
        caption_shard_file(str(data), PROFILE, ref, captioner, cset)
    finally:
        unload_captioners()
    build_release("bad1", str(data), ratios="60/20/20", caption_source=cset)
    samples = {k: m for tar in (data / layout.release_dir("bad1")).glob("*/*.tar") for k, m in read_samples(tar)}
    assert sorted(samples) == ["USD0915080_f1", BAD_KEY]
    meta = json.loads(samples[BAD_KEY]["json"])
    assert meta["caption_source"] == "metadata" and meta["caption_error"].startswith(f"{cset}: image_unreadable")
    assert samples[BAD_KEY]["txt"].decode() == meta["caption_metadata"]
    ok = json.loads(samples["USD0915080_f1"]["json"])
    assert ok["caption_source"] == cset and samples["USD0915080_f1"]["txt"].decode() != ok["caption_metadata"]
    manifest = pq.read_table(data / layout.release_dir("bad1") / "manifest.parquet").to_pylist()
    assert sorted(r["caption_source"] for r in manifest) == sorted([cset, "metadata"])


def _requests(folder: DataFolder, ref: ShardRef):
    from designclip.storage.captions import read_shard_requests

    return read_shard_requests(folder, PROFILE, ref)


@pytest.mark.usefixtures("prefect_harness")
def test_caption_flow_runs_llava_with_loader_worker_processes(data: Path, tiny_folder: Path) -> None:
    """The production path: a Prefect flow run, then llava with 2 DataLoader processes (plain fork broke here)."""
    from designclip.flows.caption import caption_flow

    summary = caption_flow(start=dt.date(2021, 1, 1), end=dt.date(2021, 12, 31), data_root=str(data),
                           captioner="llava", model=str(tiny_folder), batch_size=4, max_new_tokens=8,
                           loader_workers=2)
    assert summary["caption_set"].startswith("llava-") and summary["failures"] == 0
    assert summary["captioned"] == summary["samples"] == 20 and summary["shards"] == 4
    record = json.loads((data / layout.caption_set_record(PROFILE, summary["caption_set"])).read_text())
    assert record["backend"] == "llava" and record["settings"]["max_new_tokens"] == 8
    rows = [r for p in sorted(data.glob(f"captions/{PROFILE}/{summary['caption_set']}/*/*.parquet"))
            for r in pq.read_table(p).to_pylist()]
    assert len(rows) == 20 and all(r["caption"] and r["batch_size"] <= 4 for r in rows)
