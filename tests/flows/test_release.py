"""The release flow under embedded Prefect: the task builds the release, the artifact shows the per-split table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.release import RATIOS, release_root


def test_release_flow_builds_then_skips_and_publishes_a_split_table(release_data: Path, prefect_harness) -> None:
    from designclip.flows.release import release_flow
    from designclip.pipeline.release.options import ReleaseExists
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    first = release_flow("v-flow", str(release_data), ratios=RATIOS, shard_samples=25)
    assert first["status"] == "done" and (release_root(release_data, "v-flow") / "release.json").exists()
    again = release_flow("v-flow", str(release_data), ratios=RATIOS, shard_samples=25)
    assert again["status"] == "skipped" and again["samples"] == first["samples"]
    with pytest.raises(ReleaseExists, match="pick a new --version"):
        release_flow("v-flow", str(release_data), ratios="80/10/10", shard_samples=25)

    with get_client(sync_client=True) as client:
        key = ArtifactFilterKey(any_=["release-v-flow"])
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=key))
    assert artifacts and artifacts[0].type == "markdown"
    table = artifacts[0].data
    for split, c in first["splits"].items():
        assert f"| {split} | {c['samples']} | {c['patents']} | {c['shards']} |" in table
