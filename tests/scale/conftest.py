"""Scale-out fixtures: real sample weeks ingested once, and byte digests of a data root's rendered outputs."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from designclip.storage import layout
from designclip.storage.folder import DataFolder

# Cheap real sample weeks (one FIG. a sheet, no OCR): 3 weeks render in a few seconds at 128 px.
WEEKS = [dt.date(2021, 3, 23), dt.date(2021, 5, 4), dt.date(2021, 8, 31)]
SIZE = 128
PROFILE = f"px{SIZE}"
SHARD_SAMPLES = 4  # several shards a week


@pytest.fixture(scope="session")
def scale_ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local data root with WEEKS ingested from the bundled sample (copy it before writing to it)."""
    from designclip.pipeline.ingest.sample import ingest_sample_weeks

    root = tmp_path_factory.mktemp("scale") / "data"
    ingest_sample_weeks(root, WEEKS, tmp_path_factory.mktemp("scale-tars"))
    return root


def rendered_digests(folder: DataFolder, weeks: list[dt.date] = WEEKS) -> dict[str, str]:
    """sha256 of every shard tar and parquet index of the weeks (the per-shard stats hold timestamps)."""
    out = {}
    for week in weeks:
        for suffix in (".tar", ".parquet"):
            for rel in folder.list(layout.shard_dir(PROFILE, week), suffix):
                out[rel] = hashlib.sha256(folder.read_bytes(rel)).hexdigest()
    return out
