"""Two real releases of the bundled sample that hold different patents (stand-ins for two yearly releases: the
sample is one year), each embedded by the tiny export: what the grown index search, CLI and serve tests append."""

from __future__ import annotations

from pathlib import Path

from designclip.storage.folder import DataFolder
from designclip.storage.release_samples import manifest_columns

from tests.fixtures.release import RATIOS, SHARD_SAMPLES, copy_data

YEARS = ("y1", "y2")


def two_sample_releases(release_data: Path, tiny_export: Path, dst: Path) -> dict:
    """A private data root with releases y1 and y2 (the v1 patents split in halves, each release leaving the other
    half out) embedded by the tiny export. Returns the root, model, tag and each release's patent ids."""
    from designclip.pipeline.embed.driver import embed_release
    from designclip.pipeline.embed.encoder import EncoderSpec
    from designclip.pipeline.release.driver import build_release

    root = copy_data(release_data, dst)
    patents = sorted(set(manifest_columns(DataFolder(release_data), "v1", ["patent_id"])["patent_id"]))
    halves = {"y1": patents[: len(patents) // 2], "y2": patents[len(patents) // 2:]}
    tag = None
    for version, other in zip(YEARS, reversed(YEARS), strict=True):
        leave_out = dst.parent / f"not-in-{version}.txt"
        leave_out.write_text("\n".join(halves[other]) + "\n")
        build_release(version, str(root), ratios=RATIOS, shard_samples=SHARD_SAMPLES,
                      exclude_patents=[str(leave_out)], drop_excluded=True)
        tag = embed_release(str(root), version, EncoderSpec(str(tiny_export)))["model_tag"]
    held = {v: set(manifest_columns(DataFolder(root), v, ["patent_id"])["patent_id"]) for v in YEARS}
    assert held["y1"] and held["y2"] and not held["y1"] & held["y2"], held
    return {"data_root": str(root), "model": str(tiny_export), "tag": tag, "patents": held}
