"""Leakage-safe releases on real rendered views: near-duplicate groups, exclusion lists, multi-FIG. fallbacks; and
which views a release leaves out before writing (whole-sheet fallbacks of sheets that hold several FIG.s)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from designclip.pipeline.common.fallbacks import MULTI_FIG_FALLBACK
from designclip.pipeline.common.splits import parse_ratios, split_of
from designclip.pipeline.release.driver import build_release
from designclip.pipeline.release.plan import EXCLUDED_DROPPED, PlannedView
from designclip.pipeline.render.near_duplicates import CONFIRM, THRESHOLD, hamming
from PIL import Image

from tests.fixtures.release import RATIOS, clone_week, copy_data, read_samples, release_root, renamed

RESCAN_WEEK = dt.date(2021, 9, 1)
DEEPPATENT_WEEK = dt.date(2018, 11, 27)  # a DeepPatent test week; USD0834581 is one of its test patents
FALLBACK_WEEK = dt.date(2021, 6, 30)
FALLBACK_ID = "USD0923777"


def rescan(key: str, png: bytes) -> bytes:
    """The view scanned again: turned 0.5 degrees and shifted 2 px."""
    with Image.open(io.BytesIO(png)) as im:
        out = io.BytesIO()
        im.rotate(0.5, Image.Resampling.BICUBIC, translate=(2, 1), fillcolor=255).save(out, format="PNG")
    return out.getvalue()


def rescan_id() -> str:
    """A new patent id whose own hash split differs from USD0929296's, so only grouping can put them together."""
    ratios = parse_ratios(RATIOS)
    return next(pid for n in range(990000, 999999) if split_of(pid := f"USD0{n}", ratios)
                != split_of("USD0929296", ratios))


def as_fallbacks(meta: dict[str, Any]) -> dict[str, Any]:
    """USD0923318 as another patent whose FIG.s 1 and 2 came out as whole-sheet fallbacks of one sheet."""
    meta = renamed("USD0923318", FALLBACK_ID)(meta)
    if meta["patent_id"] == FALLBACK_ID and meta["fig"] in ("1", "2"):
        meta = meta | {"sheet": 1, "segmentation": "fallback", "flagged": True,
                       "flag": "regions could not be separated"}
    return meta


@pytest.fixture(scope="module")
def leaky_data(release_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared weeks plus a re-scan of a Wheel under a new id, a 2018 DeepPatent week re-using the Napkin's
    drawings under a DeepPatent test id, and a patent with two fallbacks on one sheet."""
    data = copy_data(release_data, tmp_path_factory.mktemp("leaky") / "data")
    clone_week(data, dt.date(2021, 8, 31), RESCAN_WEEK, renamed("USD0929296", rescan_id()), png_edit=rescan)
    clone_week(data, dt.date(2021, 4, 6), DEEPPATENT_WEEK, renamed("USD0915080", "USD0834581", "2018-11-27"))
    clone_week(data, dt.date(2021, 6, 29), FALLBACK_WEEK, as_fallbacks)
    return data


def manifest(data: Path, version: str) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in pq.read_table(release_root(data, version) / "manifest.parquet").to_pylist()}


def test_a_rescanned_sheet_under_another_id_lands_in_its_originals_group_and_split(leaky_data: Path) -> None:
    new = rescan_id()
    stats = build_release("v-leak", str(leaky_data), ratios=RATIOS)
    rows = manifest(leaky_data, "v-leak")
    original, copy = rows["USD0929296_f1"], rows[f"{new}_f1"]
    root = release_root(leaky_data, "v-leak")
    hashes = {}
    for split in ("train", "val", "test"):
        for tar in sorted((root / split).glob("*.tar")):
            for key, m in read_samples(tar):
                meta = json.loads(m["json"])
                hashes[key] = (meta["phash"], meta["phash256"])
                assert meta["dup_group"] == (rows[key]["dup_group"] or "")
    (coarse, fine), (coarse_copy, fine_copy) = hashes["USD0929296_f1"], hashes[f"{new}_f1"]
    assert hamming(coarse, coarse_copy) <= THRESHOLD and hamming(fine, fine_copy) <= CONFIRM
    assert original["dup_group"] == copy["dup_group"] == "USD0929296"
    assert original["split"] == copy["split"] == split_of("USD0929296", parse_ratios(RATIOS))
    assert split_of(new, parse_ratios(RATIOS)) != copy["split"]
    assert rows["USD0929297_f1"]["dup_group"] is None  # the other Wheel design: 12 bits (64) and 62 (256) away
    report = json.loads((root / "stats.json").read_text())["leakage"]
    assert report["near_duplicates"]["cross_split_pairs"] == 0 == stats["near_duplicates"]["cross_split_pairs"]
    groups = {g["group"]: g["patents"] for g in report["near_duplicates"]["group_list"]}
    assert groups["USD0929296"] == ["USD0929296", new]
    card = (root / "README.md").read_text()
    assert "Near-duplicate view pairs in two different splits, counted on the written release: 0." in card
    assert (f"64-bit perceptual hashes (`json.phash`) are at most {THRESHOLD} bits apart, and counts when their "
            f"256-bit hashes of the ink box (`json.phash256`) are at most {CONFIRM} bits apart") in card
    assert report["near_duplicates"]["legacy_views"] == 0
    assert json.loads((root / "stats.json").read_text())["settings"]["near_duplicate_confirm"] == CONFIRM


def test_a_2018_week_excludes_the_deeppatent_patents_and_their_near_duplicates(leaky_data: Path) -> None:
    build_release("v-leak", str(leaky_data), ratios=RATIOS)  # built above: a no-op
    rows = manifest(leaky_data, "v-leak")
    listed, reused = rows["USD0834581_f1"], rows["USD0915080_f1"]
    assert (listed["split"], listed["excluded_by"]) == ("test", "deeppatent-test")
    assert (reused["split"], reused["excluded_by"]) == ("test", "near-duplicate:deeppatent-test")
    assert {r["excluded_by"] for r in rows.values() if r["patent_id"] not in ("USD0834581", "USD0915080")} == {None}
    root = release_root(leaky_data, "v-leak")
    stats = json.loads((root / "stats.json").read_text())
    test_list = next(e for e in stats["leakage"]["exclusions"] if e["name"] == "deeppatent-test")
    assert (test_list["patents"], test_list["in_release_inputs"], test_list["near_duplicates"]) == (6927, 1, 1)
    assert stats["summary"]["by_excluded_by"]["deeppatent-test"] == {"test": 2}
    card = (root / "README.md").read_text()
    assert "| deeppatent-test | 6927 | 1 | 1 | test |" in card and "DeepPatent grant weeks" in card


def test_fallbacks_of_a_multi_fig_sheet_are_left_out_and_counted(leaky_data: Path) -> None:
    build_release("v-leak", str(leaky_data), ratios=RATIOS)
    rows = manifest(leaky_data, "v-leak")
    assert sorted(k for k in rows if k.startswith(FALLBACK_ID)) == [f"{FALLBACK_ID}_f{n}" for n in (3, 4, 5)]
    stats = json.loads((release_root(leaky_data, "v-leak") / "stats.json").read_text())
    assert stats["leakage"]["left_out_by_reason"] == {MULTI_FIG_FALLBACK: 2}
    assert {x["key"] for x in stats["left_out"]} == {f"{FALLBACK_ID}_f1", f"{FALLBACK_ID}_f2"}
    assert f"- 2: {MULTI_FIG_FALLBACK}" in (release_root(leaky_data, "v-leak") / "README.md").read_text()


def test_flags_put_fallbacks_back_and_drop_excluded_patents(leaky_data: Path, tmp_path: Path) -> None:
    mine = tmp_path / "val_query_patent.txt"
    mine.write_text("I20210831/USD0929297-20210831/USD0929297-20210831-D00001.png 7\n")
    stats = build_release("v-leak-drop", str(leaky_data), ratios=RATIOS, exclude_patents=[str(mine)],
                          drop_excluded=True, include_fallbacks=True)
    rows = manifest(leaky_data, "v-leak-drop")
    assert {f"{FALLBACK_ID}_f1", f"{FALLBACK_ID}_f2"} <= rows.keys()
    gone = {"USD0834581", "USD0915080", "USD0929297"}
    assert not gone & {r["patent_id"] for r in rows.values()}
    report = json.loads((release_root(leaky_data, "v-leak-drop") / "stats.json").read_text())
    assert report["leakage"]["left_out_by_reason"] == {EXCLUDED_DROPPED: 2 + 2 + 2}
    assert report["leakage"]["left_out_patents"] == 3 and stats["excluded_patents"] == 3
    assert [e["name"] for e in report["settings"]["exclusions"]] == ["val_query_patent.txt", "deeppatent-test",
                                                                    "deeppatent-val"]
    assert report["settings"]["excluded_to"] == "left out" and report["settings"]["include_fallbacks"] is True


def test_a_bad_exclusion_file_stops_the_release_naming_the_line(leaky_data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("USD0929297\nUSD 929297\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 2: 'USD 929297'"):
        build_release("v-leak-bad", str(leaky_data), ratios=RATIOS, exclude_patents=[str(bad)])
    assert not release_root(leaky_data, "v-leak-bad").exists()


def test_the_shared_release_has_no_cross_split_near_duplicates(release_v1: dict) -> None:
    assert release_v1["near_duplicates"] == {"groups": 0, "cross_split_pairs": 0}
    assert release_v1["excluded_patents"] == 0 and release_v1["left_out"] == 0


def test_a_small_release_gives_every_split_with_a_share_a_patent_and_a_large_one_keeps_its_hash_splits():
    from designclip.pipeline.common.splits import DEFAULT_RATIOS, fill_empty_splits
    from designclip.pipeline.release.options import SplitRule
    from designclip.pipeline.release.plan import plan_release

    twelve = [p for p in (f"USD{n:07d}" for n in range(917000, 917100)) if split_of(p) == "train"][:12]
    views = [PlannedView(f"{p}_f1", p, 1, "sheet", "", 2021) for p in twelve]
    plan = plan_release(views, SplitRule("hash", dict(DEFAULT_RATIOS)))
    assert sorted(set(plan.splits.values())) == ["test", "train", "val"]
    assert sum(s == "train" for s in plan.splits.values()) == 10  # one patent moved to each empty split
    again = plan_release(list(reversed(views)), SplitRule("hash", dict(DEFAULT_RATIOS)))
    assert again.splits == plan.splits  # deterministic, whatever the input order
    # a split with no share stays empty; fewer units than shares are left as hashed
    assert "val" not in fill_empty_splits(dict.fromkeys(twelve, "train"), {"train": 0.9, "val": 0, "test": 0.1})
    assert fill_empty_splits({"A": "train", "B": "train"}, DEFAULT_RATIOS) == {"A": "train", "B": "train"}
    # a large release (every split already filled) is exactly its hash split
    many = {f"USD{n:07d}": split_of(f"USD{n:07d}") for n in range(2000)}
    assert set(many.values()) == {"train", "val", "test"} and fill_empty_splits(many, DEFAULT_RATIOS) == many
    # an excluded patent's test place counts; it is never moved
    fixed = fill_empty_splits({"X": "test", **dict.fromkeys(twelve, "train")}, DEFAULT_RATIOS, movable=twelve)
    assert fixed["X"] == "test" and sum(s == "val" for s in fixed.values()) == 1
