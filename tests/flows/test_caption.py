"""The caption flow under Prefect, and releases that take their `.txt` from a caption set."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from designclip.storage import layout

from tests.fixtures.release import read_samples

START, END = dt.date(2021, 1, 1), dt.date(2021, 12, 31)


@pytest.mark.usefixtures("prefect_harness")
def test_caption_flow_then_a_release_with_those_captions(data: Path) -> None:
    from designclip.flows.caption import caption_flow
    from designclip.pipeline.release.driver import build_release
    from designclip.pipeline.release.options import CaptionsMissing

    summary = caption_flow(start=START, end=END, data_root=str(data), captioner="metadata")
    assert summary["caption_set"] == "metadata-1"
    assert (summary["shards"], summary["samples"], summary["captioned"], summary["failures"]) == (4, 20, 20, 0)
    assert caption_flow(start=START, end=END, data_root=str(data), captioner="metadata")["skipped"] == 4

    # edit one caption file row: proves the release reads the caption files, not the json
    shard = next(data.glob("captions/px512/metadata-1/I20210406/00000.parquet"))
    rows = pq.read_table(shard).to_pylist()
    edited = [r | ({"caption": "A chair, from the caption file."} if r["key"] == "USD0915080_f1" else {}) for r in rows]
    pq.write_table(pq.read_table(shard).from_pylist(edited, schema=pq.read_table(shard).schema), shard)

    plain = build_release("cap1", str(data), ratios="60/20/20")
    assert plain["fingerprint"]["settings"]["caption_source"] == "metadata" and "captions" not in plain["fingerprint"]
    with_captions = build_release("cap2", str(data), ratios="60/20/20", caption_source="metadata-1")
    assert with_captions["fingerprint"]["captions"]["caption_set"] == "metadata-1"
    release = data / layout.release_dir("cap2")
    samples = {k: m for tar in sorted(release.glob("*/*.tar")) for k, m in read_samples(tar)}
    assert len(samples) == 20
    assert samples["USD0915080_f1"]["txt"] == b"A chair, from the caption file."
    meta = json.loads(samples["USD0915080_f1"]["json"])
    assert meta["caption_source"] == "metadata-1" and meta["caption_model"] == "metadata"
    assert meta["caption_metadata"] != "A chair, from the caption file.", "the metadata caption stays in the json"
    manifest = pq.read_table(release / "manifest.parquet").to_pylist()
    assert {r["caption_source"] for r in manifest} == {"metadata-1"}
    assert "| metadata-1 |" in (release / "README.md").read_text()

    (data / layout.caption_stats("px512", "metadata-1", dt.date(2021, 5, 4), 1)).unlink()
    with pytest.raises(CaptionsMissing, match=r"lacks 1 of 4 shards \(I20210504/00001; weeks I20210504\)"):
        build_release("cap3", str(data), caption_source="metadata-1")
    assert not (data / layout.release_dir("cap3")).exists()


@pytest.mark.usefixtures("prefect_harness")
def test_caption_flow_errors_say_what_to_run(data: Path, tmp_path: Path) -> None:
    from designclip.flows.caption import CaptionFailed, caption_flow

    with pytest.raises(CaptionFailed, match="run `designclip render --start 2020-01-01 --end 2020-12-31` first"):
        caption_flow(start=dt.date(2020, 1, 1), end=dt.date(2020, 12, 31), data_root=str(data), captioner="metadata")
    with pytest.raises(CaptionFailed, match="--processes 2 needs 2 CUDA GPUs"):
        caption_flow(start=START, end=END, data_root=str(data), captioner="metadata", processes=2)


def test_cli_caption_on_a_cpu_machine_uses_the_metadata_backend(data: Path, capsys, prefect_harness) -> None:
    from designclip.cli.main import main

    assert main(["--data-root", str(data), "caption", "--start", "2021-03-01", "--end", "2021-04-30"]) == 0
    out = capsys.readouterr().out
    assert "Captioned 10 of 10 views with caption set metadata-1" in out
    assert "designclip release --version V --captions metadata-1" in out
    assert main(["--data-root", str(data), "caption", "--start", "2021-03-01", "--end", "2021-04-30",
                 "--captioner", "vllm"]) == 1
    assert "pip install 'designclip-pipeline[vllm]'" in capsys.readouterr().err
