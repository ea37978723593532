"""The index-append flow under embedded Prefect: two releases' stored vectors grown into one image and one text
index, then a release appended again kept as it is; a refused append fails the flow with its message."""

from __future__ import annotations

from pathlib import Path

import pytest
from designclip.pipeline.index.grown_checks import AppendRefused

from tests.pipeline.index.synthetic_releases import write_release

SHARDS = {"train": [400], "val": [100], "test": [100]}


def test_index_append_flow_grows_both_kinds_then_keeps_them(tmp_path: Path, prefect_harness: None) -> None:
    from designclip.flows.index import index_append_flow

    root = str(tmp_path / "data")
    write_release(root, "2021.1", 2021, SHARDS)
    write_release(root, "2022.1", 2022, SHARDS)
    first = index_append_flow(release="2021.1", model="syn", data_root=root)
    assert first["into"] == "all" and set(first["indexes"]) == {"image", "text"}
    second = index_append_flow(release="2022.1", model="syn", data_root=root)
    for kind, card in second["indexes"].items():
        assert not card["skipped"] and card["vectors"] == kind
        assert [r["release"] for r in card["releases"]] == ["2021.1", "2022.1"]
    assert second["indexes"]["image"]["n"] == 2 * 599 and second["indexes"]["text"]["n"] == 2 * 600
    again = index_append_flow(release="2022.1", model="syn", data_root=root)
    assert all(card["skipped"] and card["n"] == second["indexes"][k]["n"] for k, card in again["indexes"].items())
    write_release(root, "2023.1", 2023, SHARDS, weights="c" * 64)
    with pytest.raises(AppendRefused, match="embedded by another model"):
        index_append_flow(release="2023.1", model="syn", data_root=root, kinds=("image",))
