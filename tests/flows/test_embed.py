"""The embed flow under embedded Prefect: one task per release shard, a rerun skips, a summary artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from designclip.storage import embeddings
from designclip.storage.folder import DataFolder


def test_embed_flow_embeds_per_shard_then_skips_and_publishes_a_summary(release_copy: Path, tiny_export: Path,
                                                                        embedded_v1: dict, prefect_harness) -> None:
    from designclip.flows.embed import embed_flow
    from designclip.tasks.progress import artifact_key
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    first = embed_flow(release="v1", model=str(tiny_export), data_root=str(release_copy), splits=("val", "test"),
                       batch_size=4)
    assert (first["model_tag"], first["release"], first["shards"], first["skipped"]) == ("tiny-untrained", "v1", 4, 0)
    assert (first["samples"], first["failures"], first["dim"]) == (26, 0, 64) and first["seconds"] > 0
    folder = DataFolder(release_copy)
    assert embeddings.embedded_splits(folder, "v1", "tiny-untrained") == ["val", "test"]
    got = embeddings.load_split_vectors(folder, "v1", "tiny-untrained", "test")
    clean = embeddings.load_split_vectors(DataFolder(embedded_v1["data_root"]), "v1", embedded_v1["tag"], "test")
    np.testing.assert_allclose(got.image, clean.image, atol=1e-5)

    again = embed_flow(release="v1", model=str(tiny_export), data_root=str(release_copy), splits=("val", "test"))
    assert again["skipped"] == 4 and again["embedded_shards"] == 0 and again["samples"] == 26

    assert artifact_key("embed", "v1", "tiny-untrained") == "embed-v1-tiny-untrained"
    key = artifact_key("embed", "V2.1", "hf-hub-patentclip-PatentCLIP_Vit_B")
    assert key == "embed-v2-1-hf-hub-patentclip-patentclip-vit-b"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["embed-v1-tiny-untrained"])))
        assert artifacts and artifacts[0].type == "markdown"
        table = "\n".join(a.data for a in artifacts)
        assert "| val/00000.tar | done | 10 | 10 | 0 |" in table
        assert "| test/00001.tar | skipped (done) | 7 | 7 | 0 |" in table
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
            any_=list({a.flow_run_id for a in artifacts}))))
    names = {r.name for r in runs}
    assert {"embed-val-00000", "embed-val-00001", "embed-test-00000", "embed-test-00001"} <= names
