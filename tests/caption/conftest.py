"""Real rendered shards for the caption tests: cheap sample weeks, ingested and rendered once per session."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

# One FIG. per sheet (no OCR): 5 patents, 24 views; 5 samples per shard gives several shards per week.
WEEKS = [dt.date(2021, 3, 23), dt.date(2021, 4, 6), dt.date(2021, 5, 4)]
SHARD_SAMPLES = 5


@pytest.fixture(scope="session")
def caption_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with WEEKS ingested and rendered (px512), no captions yet: copy it before writing."""
    from designclip.pipeline.render.driver import RENDER, RenderStageOptions
    from designclip.storage.folder import DataFolder

    from tests.builders import ingest_sample_weeks

    root = tmp_path_factory.mktemp("caption")
    data = root / "data"
    ingest_sample_weeks(data, WEEKS, root)
    for week in WEEKS:
        RENDER.run(DataFolder(data), week, RenderStageOptions(max_samples=SHARD_SAMPLES))
    return data


@pytest.fixture()
def data(caption_data: Path, tmp_path: Path) -> Path:
    """A private copy of the rendered data root."""
    return Path(shutil.copytree(caption_data, tmp_path / "data"))
