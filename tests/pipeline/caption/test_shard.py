"""The caption stage on real rendered shards: files, markers, reruns, a killed run resumed, set ids never mixed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from designclip.pipeline.caption.captioner import caption_set_id
from designclip.pipeline.caption.driver import CaptionerSpec, caption_shard_file, load_captioner, prepare_set
from designclip.storage import layout
from designclip.storage.captions import (
    CaptionStorageError,
    read_shard_requests,
    rendered_shards,
    resolve_caption_set,
    write_set_record,
)
from designclip.storage.folder import DataFolder

ROOT = Path(__file__).resolve().parents[3]
PROFILE = "px512"


def caption_all(data: Path) -> tuple[str, list[dict]]:
    captioner = load_captioner(CaptionerSpec("metadata"))
    cset = prepare_set(str(data), PROFILE, captioner)
    refs = rendered_shards(DataFolder(data), PROFILE)
    return cset, [caption_shard_file(str(data), PROFILE, ref, captioner, cset) for ref in refs]


def test_every_view_gets_a_caption_row_and_the_marker_comes_last(data: Path) -> None:
    folder = DataFolder(data)
    refs = rendered_shards(folder, PROFILE)
    assert len(refs) == 4
    cset, stats = caption_all(data)
    assert cset == "metadata-1" and [s["skipped"] for s in stats] == [False] * 4
    for ref, s in zip(refs, stats, strict=True):
        requests = read_shard_requests(folder, PROFILE, ref)
        table = pq.read_table(data / layout.caption_file(PROFILE, cset, ref.week, ref.number)).to_pylist()
        assert [r["key"] for r in table] == [r.key for r in requests], "one row per sample, in shard order"
        assert [r["caption"] for r in table] == [r.meta["caption_metadata"] for r in requests]
        assert {r["backend"] for r in table} == {"metadata"} and {r["prompt_version"] for r in table} == {"metadata-1"}
        assert s["samples"] == s["captioned"] == len(requests) and s["failures"] == 0
        marker = data / layout.caption_stats(PROFILE, cset, ref.week, ref.number)
        parquet = data / layout.caption_file(PROFILE, cset, ref.week, ref.number)
        assert marker.stat().st_mtime_ns >= parquet.stat().st_mtime_ns
    assert sum(s["samples"] for s in stats) == 20
    previews = sorted((data / "previews" / PROFILE / "captions" / cset).glob("*.png"))
    assert [p.stem for p in previews] == ["I20210323", "I20210406", "I20210504"]
    assert not list(data.rglob("*.part*.parquet")) and not list(data.rglob(".*.tmp"))
    record = json.loads((data / layout.caption_set_record(PROFILE, cset)).read_text())
    assert record == {"backend": "metadata", "model_id": "metadata", "prompt_version": "metadata-1", "settings": {}}
    mtimes = sorted(p.stat().st_mtime_ns for p in data.rglob("captions/**/*.parquet"))
    _, again = caption_all(data)
    assert all(s["skipped"] for s in again)
    assert sorted(p.stat().st_mtime_ns for p in data.rglob("captions/**/*.parquet")) == mtimes


def test_set_ids_keep_models_prompts_and_settings_apart(data: Path) -> None:
    a = caption_set_id("llava", "llava-hf/llava-1.5-7b-hf", "view-1", {"max_new_tokens": 77})
    assert a.startswith("llava-llava-1.5-7b-hf-view-1-")
    assert caption_set_id("llava", "llava-hf/llava-1.5-7b-hf", "view-1", {"max_new_tokens": 77}) == a
    others = {caption_set_id("llava", "llava-hf/llava-1.5-13b-hf", "view-1", {"max_new_tokens": 77}),
              caption_set_id("llava", "llava-hf/llava-1.5-7b-hf", "view-2", {"max_new_tokens": 77}),
              caption_set_id("llava", "llava-hf/llava-1.5-7b-hf", "view-1", {"max_new_tokens": 32}),
              caption_set_id("vllm", "llava-hf/llava-1.5-7b-hf", "view-1", {"max_new_tokens": 77})}
    assert len(others) == 4 and a not in others
    folder = DataFolder(data)
    write_set_record(folder, PROFILE, a, {"backend": "llava", "model_id": "m", "prompt_version": "view-1"})
    write_set_record(folder, PROFILE, a, {"backend": "llava", "model_id": "m", "prompt_version": "view-1"})
    with pytest.raises(CaptionStorageError, match="describes another captioner"):
        write_set_record(folder, PROFILE, a, {"backend": "llava", "model_id": "other", "prompt_version": "view-1"})
    assert resolve_caption_set(folder, PROFILE, "llava") == a
    with pytest.raises(CaptionStorageError, match="no caption set 'vllm'.*--captioner vllm"):
        resolve_caption_set(folder, PROFILE, "vllm")


SLOW_RUN = """
import sys, time
from designclip.pipeline.caption.metadata import MetadataCaptioner
from designclip.storage.captions import rendered_shards
from designclip.storage.folder import DataFolder
from designclip.pipeline.caption.driver import caption_shard_file, prepare_set

class Slow(MetadataCaptioner):
    def caption(self, requests):
        for r in super().caption(requests):
            time.sleep(float(sys.argv[2]))
            print("captioned", r.key, flush=True)
            yield r

data = sys.argv[1]
captioner = Slow()
cset = prepare_set(data, "px512", captioner)
ref = rendered_shards(DataFolder(data), "px512")[0]
stats = caption_shard_file(data, "px512", ref, captioner, cset, checkpoint_rows=2)
print("resumed", stats["resumed_rows"], flush=True)
"""


def test_a_killed_run_resumes_from_its_checkpoints_without_recaptioning(data: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", SLOW_RUN, str(data)]
    proc = subprocess.Popen([*cmd, "0.3"], env=env, stdout=subprocess.PIPE, text=True)
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line.split()[1])
        if len(seen) == 5:
            os.kill(proc.pid, signal.SIGKILL)  # a hard crash mid-shard: no cleanup code runs
            break
    proc.wait()
    parts = sorted(data.rglob("00000.part*.parquet"))
    assert len(parts) == 2, "rows 1-2 and 3-4 were checkpointed; row 5 was lost with the process"
    second = subprocess.run([*cmd, "0"], env=env, capture_output=True, text=True, check=True).stdout.split("\n")
    recaptioned = [line.split()[1] for line in second if line.startswith("captioned")]
    folder = DataFolder(data)
    ref = rendered_shards(folder, PROFILE)[0]
    keys = [r.key for r in read_shard_requests(folder, PROFILE, ref)]
    assert seen == keys[:5] and "resumed 4" in second
    assert recaptioned == keys[4:], "only the samples after the last checkpoint are captioned again"
    rows = pq.read_table(data / layout.caption_file(PROFILE, "metadata-1", ref.week, ref.number)).to_pylist()
    assert [r["key"] for r in rows] == keys
    assert all(r["caption"] for r in rows)
    assert not list(data.rglob("*.part*.parquet")), "checkpoints are merged and removed once the shard is done"


def test_two_processes_split_whole_shards_between_them(data: Path) -> None:
    """The multi-GPU path (accelerate's split_between_processes) run as two real CPU processes over gloo."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "-m", "designclip.cli.caption_worker", "--data-root", str(data), "--weeks-from", "2021-01-01",
                          "--weeks-to", "2021-12-31", "--captioner", "metadata"],
                         env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    done = {1: [], 2: []}
    for line in out.stderr.splitlines():
        if "captions," in line and "[caption " in line:
            done[int(line.split("[caption ")[1][0])].append(line.split("] ")[1].split(":")[0])
    assert sorted(done[1] + done[2]) == sorted(r.name for r in rendered_shards(DataFolder(data), PROFILE))
    assert len(done[1]) == len(done[2]) == 2 and not set(done[1]) & set(done[2])
    assert out.stderr.count("/2] 4 of 4 shards pending, 2 for this process") == 2, "one group of two processes"
    folder = DataFolder(data)
    for ref in rendered_shards(folder, PROFILE):  # every shard's captions on disk, whichever process wrote them
        rows = pq.read_table(data / layout.caption_file(PROFILE, "metadata-1", ref.week, ref.number)).to_pylist()
        assert [r["key"] for r in rows] == [r.key for r in read_shard_requests(folder, PROFILE, ref)]
        assert all(r["caption"] for r in rows)
