"""Inputs beyond the happy path: duplicates across weeks, unknown classes, grant-year splits (real samples, cloned)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from designclip.pipeline.release.driver import build_release
from designclip.storage.folder import DataFolder
from designclip.storage.tables import finished_weeks, read_marker

from tests.fixtures.release import clone_week, copy_data, release_root, renamed, zoomed


@pytest.fixture(scope="module")
def messy_data(release_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared weeks plus: a week re-shipping 2021-04-06's samples, a week mixing a released patent's new views
    with old keys, a patent without a US class, and two patents granted in 2019 and 2020."""
    data = copy_data(release_data, tmp_path_factory.mktemp("messy") / "data")
    clone_week(data, dt.date(2021, 4, 6), dt.date(2021, 12, 14))  # same keys: all duplicates

    def new_views_of_929296(meta: dict[str, Any]) -> dict[str, Any]:
        return meta | {"key": meta["key"] + "x"} if meta["patent_id"] == "USD0929296" else meta

    clone_week(data, dt.date(2021, 8, 31), dt.date(2021, 12, 15), new_views_of_929296)

    def unclassified(meta: dict[str, Any]) -> dict[str, Any]:
        return renamed("USD0923318", "USD0923999")(meta) | {"uspc_class": None, "cls": -1}

    clone_week(data, dt.date(2021, 6, 29), dt.date(2021, 6, 30), unclassified)
    # Zoomed-in views: other pictures, so these patents are not near-duplicates of the 2021 ones they come from.
    clone_week(data, dt.date(2021, 4, 13), dt.date(2019, 4, 16), renamed("USD0915935", "USD0815935", "2019-04-16"),
               png_edit=zoomed)
    clone_week(data, dt.date(2021, 5, 4), dt.date(2020, 5, 5), lambda m: renamed(
        "USD0918440", "USD0818440", "2020-05-05")(renamed("USD0917866", "USD0817866", "2020-05-05")(m)),
               png_edit=zoomed)
    return data


def _markers(data: Path) -> list[dict[str, Any]]:
    folder = DataFolder(data)
    stage = "render/px512"
    return [read_marker(folder, stage, w) for w in finished_weeks(folder, stage)]


def test_duplicates_are_recorded_and_counts_still_reconcile(messy_data: Path) -> None:
    stats = build_release("v-dup", str(messy_data), years=[2021])
    root = release_root(messy_data, "v-dup")
    report = json.loads((root / "stats.json").read_text())
    inputs = sum(m["samples"] for m in _markers(messy_data) if m["week"].startswith("2021"))
    assert stats["samples"] == inputs - stats["duplicates"] == report["input_samples"] - len(report["duplicates"])
    reasons = {(d["key"], d["reason"]) for d in report["duplicates"]}
    assert ("USD0915080_f1", "duplicate key") in reasons and ("USD0915080_f2", "duplicate key") in reasons
    assert ("USD0929297_f1", "duplicate key") in reasons
    assert ("USD0929296_f1x", "patent already released") in reasons
    assert stats["duplicates"] == 2 + 4
    first = {d["key"]: d["first_seen"] for d in report["duplicates"]}
    assert first["USD0915080_f1"] == "shards/px512/I20210406/00000.tar"
    keys = pq.read_table(root / "manifest.parquet", columns=["key", "source_week"]).to_pylist()
    assert {k["source_week"] for k in keys if k["key"].startswith("USD0915080")} == {"2021-04-06"}
    assert "Duplicates dropped" in (root / "README.md").read_text()


def test_samples_without_a_us_class_are_kept_and_counted(messy_data: Path) -> None:
    stats = build_release("v-cls", str(messy_data), years=[2021])
    root = release_root(messy_data, "v-cls")
    rows = pq.read_table(root / "manifest.parquet").to_pylist()
    unknown = [r for r in rows if r["patent_id"] == "USD0923999"]
    assert len(unknown) == 5 and all(r["cls"] == -1 and r["uspc_class"] is None for r in unknown)
    assert stats["unknown_cls"] == 5 == sum(stats["splits"][s]["unknown_cls"] for s in stats["splits"])
    assert "(`cls` = -1): 5" in (root / "README.md").read_text()


def test_split_by_year_holds_out_the_latest_grant_years(messy_data: Path) -> None:
    stats = build_release("v-year", str(messy_data), split_by="year")
    rows = pq.read_table(release_root(messy_data, "v-year") / "manifest.parquet").to_pylist()
    assert {(r["grant_year"], r["split"]) for r in rows} == {(2019, "train"), (2020, "val"), (2021, "test")}
    assert stats["splits"]["train"]["samples"] == 7 and stats["splits"]["val"]["samples"] == 10
    for r in rows:
        assert r["split"] == {2019: "train", 2020: "val", 2021: "test"}[r["grant_year"]]

    explicit = build_release("v-year-2019", str(messy_data), split_by="year", test_year=2019, val_year=2020)
    assert explicit["splits"]["test"]["samples"] == 7 and explicit["splits"]["val"]["samples"] == 10

    with pytest.raises(ValueError, match="leaves train empty"):
        build_release("v-year-2021", str(messy_data), split_by="year", years=[2021])
    assert not release_root(messy_data, "v-year-2021").exists()
