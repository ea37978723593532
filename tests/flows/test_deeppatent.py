"""The DeepPatent flow under embedded Prefect: one task per week, the artifact's table, a rerun skips every week."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.deeppatent import LISTS, ingested_deeppatent_weeks


def test_flow_builds_weeks_then_skips_them_and_publishes_a_table(tmp_path: Path, prefect_harness) -> None:
    from designclip.flows.deeppatent import DeepPatentFailed, deeppatent_flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with pytest.raises(DeepPatentFailed, match="designclip ingest --start 2018-01-01 --end 2019-06-30"):
        deeppatent_flow(str(LISTS), str(tmp_path / "empty"))
    folder = ingested_deeppatent_weeks(tmp_path)
    first = deeppatent_flow(str(LISTS), folder.root, name="dp_flow")
    assert (first["weeks_built"], first["weeks_skipped"], first["missing_sheets"], first["train_patents"]) == (
        2, 0, 9, 2)
    assert (Path(first["where"]) / "lists" / "train_patent_trn.txt").exists()
    assert sum(r["train_sheets"] for r in first["rows"]) == first["train_sheets"]  # counts, not the path lists
    assert not any("train" in r or "views" in r for r in first["rows"])
    again = deeppatent_flow(str(LISTS), folder.root, name="dp_flow")
    assert again["weeks_skipped"] == 2 and again["train_sheets"] == first["train_sheets"]
    with get_client(sync_client=True) as client:
        key = ArtifactFilterKey(any_=["deeppatent-dp-flow"])
        tables = [a.data for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=key))]
    # nothing rendered: the listed patent of the week has no views yet (0 of 1)
    assert any("| 2018-11-27 | done | 11 | 9 | 4 | 0/1 |" in t and first["summary"] in t for t in tables)
    assert any("| 2018-11-27 | skipped (done) | 11 | 9 | 4 | 0/1 |" in t for t in tables)
