"""DoneMarker: one done-marker mechanism for every stage (stats + settings fingerprint, written last, removed first)."""

from __future__ import annotations

import json
from pathlib import Path

from designclip.storage import layout, markers
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker, is_marker, settings_fingerprint
from designclip.storage.tables import finished_weeks, read_marker, write_marker

from tests.storage.test_shards import WEEK


def test_a_marker_says_done_only_for_the_settings_it_was_written_with(tmp_path: Path) -> None:
    marker = DoneMarker(DataFolder(tmp_path), "_stats/render/px64/I20210105.json")
    assert marker.read() is None and marker.done({"size": 64}) is None
    record = marker.write({"samples": 3}, {"size": 64, "pad": 2})
    assert record["settings_fingerprint"] == settings_fingerprint({"pad": 2, "size": 64})  # key order is irrelevant
    assert marker.done({"pad": 2, "size": 64}) == record and marker.done() == record
    assert marker.done({"size": 128, "pad": 2}) is None  # other settings: redo
    marker.remove()
    assert marker.read() is None
    marker.remove()  # removing twice is fine


def test_markers_from_before_fingerprints_compare_their_settings(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path)
    folder.write_json("m.json", {"samples": 1, "settings": {"size": 64}})
    assert DoneMarker(folder, "m.json").done({"size": 64}) is not None
    assert DoneMarker(folder, "m.json").done({"size": 32}) is None


def test_week_markers_keep_their_file_and_bytes(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path)
    write_marker(folder, "ingest", WEEK, {"patents": 2, "finished_at": "now"})
    path = tmp_path / layout.stats_marker("ingest", WEEK)
    assert json.loads(path.read_text()) == {"patents": 2, "finished_at": "now"}  # no settings given: no new keys
    assert path.read_text() == json.dumps({"finished_at": "now", "patents": 2}, indent=2, sort_keys=True) + "\n"
    assert read_marker(folder, "ingest", WEEK) == {"patents": 2, "finished_at": "now"}
    assert finished_weeks(folder, "ingest") == [WEEK]
    write_marker(folder, "ingest", WEEK, {"patents": 2}, settings={"parser_version": 3})
    assert read_marker(folder, "ingest", WEEK, settings={"parser_version": 3}) is not None
    assert read_marker(folder, "ingest", WEEK, settings={"parser_version": 4}) is None


def test_one_list_of_marker_names_and_removal_marker_first(tmp_path: Path) -> None:
    for rel in ("shards/px512/I20210105/00000.stats.json", "releases/v1/release.json", "runs/r/train.json",
                "indexes/v1/m/image/card.json", "reports/v1/m/report.json", "embeddings/v1/m/encoder.json",
                "_stats/ingest/I20210105.json"):
        assert is_marker(rel), rel
    for rel in ("shards/px512/I20210105/00000.tar", "releases/v1/manifest.parquet", "runs/r/run.json",
                "indexes/v1/m/image/card.md"):
        assert not is_marker(rel), rel
    folder = DataFolder(tmp_path)
    folder.write_json("releases/v1/release.json", {})
    folder.write_json("releases/v1/train/00000.tar", {})
    assert markers.remove_tree(folder, "releases/v1") and not folder.exists("releases/v1")
