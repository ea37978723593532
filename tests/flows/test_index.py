"""The index flow under embedded Prefect: both kinds of index built on the real embedded release, then kept."""

from __future__ import annotations


def test_index_flow_builds_both_kinds_then_keeps_them(embedded_v1: dict, prefect_harness: None) -> None:
    from designclip.flows.index import index_flow

    root, release = embedded_v1["data_root"], embedded_v1["release"]
    first = index_flow(release=release, model=embedded_v1["model"], data_root=root)
    assert first["model_tag"] == embedded_v1["tag"] and set(first["indexes"]) == {"image", "text"}
    second = index_flow(release=release, model=embedded_v1["tag"], data_root=root)  # the tag works as well
    assert all(card["skipped"] for card in second["indexes"].values())
    text = second["indexes"]["text"]
    assert text["vectors"] == "text" and text["n"] + text["left_out"] == text["rows_total"]
