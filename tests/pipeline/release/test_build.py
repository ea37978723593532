"""Releases built from real rendered weeks: splits, grouping, counts, sizes, checksums, immutability, crash safety."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from designclip.pipeline.common.splits import SPLITS, parse_ratios, split_of
from designclip.pipeline.release.driver import build_release
from designclip.pipeline.release.options import NothingToRelease, ReleaseExists
from designclip.pipeline.release.shards import release_order
from designclip.storage.folder import DataFolder
from designclip.storage.tables import read_marker

from tests.fixtures.release import NOT_RENDERED, RATIOS, RENDERED, SHARD_SAMPLES, read_samples, release_root


def _manifest(root: Path) -> list[dict[str, Any]]:
    return pq.read_table(root / "manifest.parquet").to_pylist()


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_counts_reconcile_with_the_input_week_markers(release_data: Path, release_v1: dict[str, Any]) -> None:
    folder = DataFolder(release_data)
    markers = [read_marker(folder, "render/px512", w) for w in RENDERED]
    assert release_v1["status"] == "done" and release_v1["duplicates"] == 0
    assert release_v1["samples"] == sum(m["samples"] for m in markers) - release_v1["duplicates"] == 58
    assert release_v1["patents"] == sum(m["patents"] for m in markers) == 12
    root = release_root(release_data, "v1")
    rows = _manifest(root)
    assert len(rows) == 58 and len({r["key"] for r in rows}) == 58
    assert sum(release_v1["splits"][s]["samples"] for s in SPLITS) == 58
    assert release_v1["not_included"] == [{"week": NOT_RENDERED.isoformat(), "reason": "not rendered"}]
    stats = json.loads((root / "stats.json").read_text())
    assert stats["input_samples"] == 58 and stats["duplicates"] == []
    assert [i["week"] for i in stats["inputs"]] == [w.isoformat() for w in RENDERED]
    card = (root / "README.md").read_text()
    assert f"- {NOT_RENDERED.isoformat()}: not rendered" in card and "public domain" in card
    for split in SPLITS:
        c = release_v1["splits"][split]
        assert f"| {split} | {c['samples']} | {c['patents']} | {c['shards']} |" in card


def test_every_patent_is_in_one_split_and_one_shard_adjacent(release_data: Path, release_v1: dict[str, Any]) -> None:
    rows = _manifest(release_root(release_data, "v1"))
    ratios = parse_ratios(RATIOS)
    by_patent: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_patent.setdefault(r["patent_id"], []).append(r)
    assert {r["split"] for r in rows} == set(SPLITS)
    for pid, samples in by_patent.items():
        assert {s["split"] for s in samples} == {split_of(pid, ratios)}
        assert len({s["shard"] for s in samples}) == 1, f"{pid} straddles shards"
        positions = sorted(s["shard_index"] for s in samples)
        assert positions == list(range(positions[0], positions[0] + len(samples))), f"{pid} is not adjacent"
    for split in SPLITS:  # fixed order: hash of the patent id, then the patent's views in source order
        part = [r for r in rows if r["split"] == split]
        assert part == sorted(part, key=lambda r: (release_order(r["patent_id"]), r["source_shard"], r["source_index"]))
        assert part == sorted(part, key=lambda r: (r["shard"], r["shard_index"]))


def test_shards_sizes_json_and_wids_index_match_the_tar_contents(release_data: Path,
                                                                  release_v1: dict[str, Any]) -> None:
    root = release_root(release_data, "v1")
    rows = {r["key"]: r for r in _manifest(root)}
    for split in SPLITS:
        sizes = json.loads((root / split / "sizes.json").read_text())
        tars = sorted(p.name for p in (root / split).glob("*.tar"))
        assert list(sizes) == tars == [f"{i:05d}.tar" for i in range(len(tars))]
        wids_index = json.loads((root / f"{split}.wids.json").read_text())
        listed = [(s["url"], s["nsamples"]) for s in wids_index["shardlist"]]
        assert listed == [(f"{split}/{n}", sizes[n]) for n in tars]
        for name in tars:
            samples = read_samples(root / split / name)
            assert len(samples) == sizes[name] and sizes[name] > 0
            patents = {json.loads(m["json"])["patent_id"] for _, m in samples}
            assert sizes[name] <= SHARD_SAMPLES or len(patents) == 1
            for i, (key, m) in enumerate(samples):
                assert set(m) == {"png", "json", "cls", "txt"}
                meta = json.loads(m["json"])
                assert meta["split"] == split and meta["key"] == key
                assert (rows[key]["shard"], rows[key]["shard_index"]) == (f"{split}/{name}", i)
                assert int(m["cls"]) == meta["cls"] and m["txt"].decode() == meta["caption_metadata"]
        assert sum(sizes.values()) == release_v1["splits"][split]["samples"]


def test_members_are_the_rendered_bytes_with_only_the_release_fields_rewritten(release_data: Path,
                                                                               release_v1: dict[str, Any]) -> None:
    root = release_root(release_data, "v1")
    released = {k: m for split in SPLITS for t in sorted((root / split).glob("*.tar")) for k, m in read_samples(t)}
    for row in _manifest(root):
        source = dict(read_samples(release_data / row["source_shard"]))[row["key"]]
        out = released[row["key"]]
        assert {e: out[e] for e in ("png", "cls", "txt")} == {e: source[e] for e in ("png", "cls", "txt")}
        before, after = json.loads(source["json"]), json.loads(out["json"])
        assert after == before | {"split": row["split"], "caption_source": "metadata"}
        assert row["png_bytes"] == len(source["png"]) and row["grant_year"] == 2021


def test_sha256sums_cover_and_verify_every_file(release_data: Path, release_v1: dict[str, Any]) -> None:
    root = release_root(release_data, "v1")
    listed = {}
    for line in (root / "SHA256SUMS").read_text().splitlines():
        sha, name = line.split("  ", 1)
        listed[name] = sha
    on_disk = {n for n in _files(root) if n not in ("SHA256SUMS", "release.json")}
    assert set(listed) == on_disk
    for name, sha in listed.items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == sha
    marker = json.loads((root / "release.json").read_text())
    assert marker["sha256sums"] == hashlib.sha256((root / "SHA256SUMS").read_bytes()).hexdigest()
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"], cwd=root, check=True)


def test_classes_json_is_the_33_class_map(release_data: Path, release_v1: dict[str, Any]) -> None:
    classes = json.loads((release_root(release_data, "v1") / "classes.json").read_text())
    us = classes["us_design_classes"]
    assert len(us) == 33 and [c["cls"] for c in us] == list(range(33))
    assert us[0]["code"] == "D1" and us[-1]["code"] == "D99" and classes["unknown_cls"] == -1
    assert classes["locarno"]["01"] == "Foodstuffs"


def test_a_split_without_a_share_is_empty_and_readable(release_data: Path) -> None:
    stats = build_release("v-default", str(release_data), ratios="100/0/0")
    root = release_root(release_data, "v-default")
    assert stats["splits"]["val"]["samples"] == 0 and stats["splits"]["train"]["samples"] > 0
    assert json.loads((root / "val" / "sizes.json").read_text()) == {}
    assert not (root / "val.wids.json").exists() and (root / "train.wids.json").exists()
    assert all(r["split"] == "train" for r in _manifest(root))


def test_default_shares_give_a_small_release_every_split(release_data: Path) -> None:
    stats = build_release("v-small", str(release_data))  # 12 patents at 90/5/5: val is empty by hash alone
    assert sum(split_of(p) == "val" for p in {r["patent_id"] for r in _manifest(release_root(release_data,
                                                                                             "v-small"))}) == 0
    assert all(stats["splits"][s]["patents"] >= 1 for s in SPLITS), stats["splits"]
    moved = [r for r in _manifest(release_root(release_data, "v-small")) if r["split"] != split_of(r["patent_id"])]
    assert len({r["patent_id"] for r in moved}) == 1  # only what fills the empty split moves


def test_the_same_rendered_weeks_give_the_same_release_bytes_also_rendered_twice(release_data: Path,
                                                                               tmp_path: Path) -> None:
    from designclip.pipeline.render.driver import RENDER
    from designclip.storage import layout

    from tests.fixtures.release import copy_data

    first, second = (copy_data(release_data, tmp_path / name / "data") for name in ("a", "b"))
    for data in (first, second):
        build_release("v-same", str(data), ratios=RATIOS, shard_samples=SHARD_SAMPLES)
    reference = _files(release_root(first, "v-same"))
    assert _files(release_root(second, "v-same")) == reference  # every file, release.json and stats.json too
    folder = DataFolder(second)
    for week in RENDERED[:3]:  # rendered again: same shards, new run times in the markers
        shutil.rmtree(second / layout.shard_dir("px512", week))
        (second / layout.stats_marker("render/px512", week)).unlink()
        RENDER.run(folder, week)
    assert (second / layout.stats_marker("render/px512", RENDERED[0])).read_bytes() != (
        first / layout.stats_marker("render/px512", RENDERED[0])).read_bytes()
    again = build_release("v-same", str(second), ratios=RATIOS, shard_samples=SHARD_SAMPLES)
    assert again["status"] == "skipped"  # the same release: nothing to do
    shutil.rmtree(release_root(second, "v-same"))
    build_release("v-same", str(second), ratios=RATIOS, shard_samples=SHARD_SAMPLES)
    rebuilt = _files(release_root(second, "v-same"))
    assert set(rebuilt) == set(reference)
    assert [n for n in reference if rebuilt[n] != reference[n]] == []


def test_release_work_is_under_the_data_root_and_a_killed_builds_is_swept(release_data: Path, tmp_path: Path,
                                                                          monkeypatch) -> None:
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    root = release_root(release_data, "v-work")
    seen: list[list[str]] = []

    def look(split: str, info: dict[str, Any]) -> None:
        seen.append(sorted(os.listdir(scratch)))
        assert (root / ".work").is_dir()

    build_release("v-work", str(release_data), ratios=RATIOS, shard_samples=SHARD_SAMPLES, on_shard=look)
    assert seen and all(s == [] for s in seen) and os.listdir(scratch) == []
    assert not (root / ".work").exists()
    shutil.rmtree(root)
    (root / ".work").mkdir(parents=True)  # what a kill -9 during the build leaves
    (root / ".work" / "train.parquet").write_bytes(b"half a manifest part")
    (root / "train").mkdir()
    (root / "train" / "00000.tar").write_bytes(b"half a shard")
    assert build_release("v-work", str(release_data), ratios=RATIOS, shard_samples=SHARD_SAMPLES)["status"] == "done"
    assert not (root / ".work").exists() and (root / "release.json").exists()


def test_rerun_is_a_no_op_and_other_settings_under_the_same_version_fail(release_data: Path,
                                                                        release_v1: dict[str, Any]) -> None:
    root = release_root(release_data, "v1")
    before = {n: os.stat(root / n).st_mtime_ns for n in _files(root)}
    again = build_release("v1", str(release_data), ratios=RATIOS, shard_samples=SHARD_SAMPLES)
    assert again["status"] == "skipped" and again["skipped"] and again["samples"] == release_v1["samples"]
    assert {n: os.stat(root / n).st_mtime_ns for n in _files(root)} == before
    with pytest.raises(ReleaseExists, match=r"shard_samples: 10 -> 20.*pick a new --version"):
        build_release("v1", str(release_data), ratios=RATIOS, shard_samples=20)
    with pytest.raises(ReleaseExists, match=r"years: None -> \[2021\].*pick a new --version"):
        build_release("v1", str(release_data), ratios=RATIOS, shard_samples=SHARD_SAMPLES, years=[2021])
    assert {n: os.stat(root / n).st_mtime_ns for n in _files(root)} == before


def test_a_crashed_release_is_rebuilt_to_the_same_bytes(release_data: Path) -> None:
    version = "v-crash"
    build_release(version, str(release_data), ratios=RATIOS, shard_samples=SHARD_SAMPLES)
    root = release_root(release_data, version)
    reference = _files(root)
    shutil.rmtree(root)

    def crash(split: str, info: dict[str, Any]) -> None:
        raise RuntimeError("simulated crash after the first shard")

    with pytest.raises(RuntimeError, match="simulated crash"):
        build_release(version, str(release_data), ratios=RATIOS, shard_samples=SHARD_SAMPLES, on_shard=crash)
    assert (root / "train" / "00000.tar").exists() and not (root / "release.json").exists()
    assert not [p for p in root.rglob(".*.tmp")], "open shards of a failed run are removed"
    (root / "val").mkdir(exist_ok=True)
    (root / "val" / "00042.tar").write_bytes(b"leftover of an older crashed run")
    (root / "train" / ".00001.tar.0badc0de.tmp").write_bytes(b"what a killed writer leaves")

    rebuilt = build_release(version, str(release_data), ratios=RATIOS, shard_samples=SHARD_SAMPLES)
    assert rebuilt["status"] == "done"
    after = _files(root)
    assert "val/00042.tar" not in after and "train/.00001.tar.0badc0de.tmp" not in after
    assert set(after) == set(reference)
    assert after == reference  # release.json too: it holds no run times


def test_nothing_to_release_and_bad_inputs_fail_before_writing(release_data: Path) -> None:
    with pytest.raises(NothingToRelease, match="no finished render weeks"):
        build_release("v-none", str(release_data), years=[1999])
    with pytest.raises(ValueError, match="no caption set 'blip2'.*designclip caption --captioner metadata"):
        build_release("v-blip", str(release_data), caption_source="blip2")
    assert not release_root(release_data, "v-none").exists() and not release_root(release_data, "v-blip").exists()


def test_a_tar_that_disagrees_with_its_index_is_refused(release_data: Path, tmp_path: Path) -> None:
    from designclip.storage.release import ReleaseInputError

    from tests.fixtures.release import copy_data

    data = copy_data(release_data, tmp_path / "data")
    shard = data / "shards/px512/I20210406/00000.tar"
    samples = read_samples(shard)
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:  # drop the last sample
        for key, m in samples[:-1]:
            for ext, body in m.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    with pytest.raises(ReleaseInputError, match="re-render week 2021-04-06"):
        build_release("v1", str(data))
    assert not (release_root(data, "v1") / "release.json").exists()


def test_the_card_and_stats_name_the_revised_weeks(release_data: Path, release_v1: dict[str, Any],
                                                   tmp_path: Path) -> None:
    from tests.fixtures.release import copy_data

    assert release_v1["revised"] == [] and "Revised weeks" not in (release_root(release_data, "v1") / "README.md"
                                                                    ).read_text()
    data = copy_data(release_data, tmp_path / "data")
    folder = DataFolder(data)
    for week in (RENDERED[1], NOT_RENDERED):  # a revised input week, and a revised week that is not an input
        rel = f"_stats/ingest/I{week:%Y%m%d}.json"
        marker = folder.read_json(rel)
        folder.write_json(rel, marker | {"source_archive": f"I{week:%Y%m%d}_r1.tar",
                                         "revised_from": marker["source_archive"]})
    done = build_release("v-revised", str(data), ratios=RATIOS, shard_samples=SHARD_SAMPLES)
    expected = [{"week": "2021-04-06", "from": "I20210406.tar", "to": "I20210406_r1.tar"}]
    root = release_root(data, "v-revised")
    assert done["revised"] == expected and json.loads((root / "stats.json").read_text())["revised"] == expected
    card = (root / "README.md").read_text()
    assert "| 2021-04-06 | `I20210406.tar` | `I20210406_r1.tar` |" in card and "I20211207_r1" not in card


def test_a_release_built_before_run_times_were_left_out_is_still_the_same_release(release_data: Path) -> None:
    build_release("v-legacy", str(release_data), ratios=RATIOS, shard_samples=SHARD_SAMPLES)
    marker_path = release_root(release_data, "v-legacy") / "release.json"
    marker = json.loads(marker_path.read_text())
    for item in marker["fingerprint"]["inputs"]:  # as recorded before: the hash of the render marker's bytes
        item["sha256"] = hashlib.sha256((release_data / item["marker"]).read_bytes()).hexdigest()
    marker_path.write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
    again = build_release("v-legacy", str(release_data), ratios=RATIOS, shard_samples=SHARD_SAMPLES)
    assert again["status"] == "skipped"
    with pytest.raises(ReleaseExists, match="shard_samples"):
        build_release("v-legacy", str(release_data), ratios=RATIOS, shard_samples=SHARD_SAMPLES + 1)
