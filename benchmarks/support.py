"""What several benchmarks build from the bundled sample: a patent's render input, ingested sample weeks.

A benchmark imports it as `support` (its own folder is first on sys.path when run as `python benchmarks/X.py`);
nothing here comes from tests/ or needs pytest.
"""

from __future__ import annotations

from pathlib import Path

from designclip.pipeline.ingest.sample import ingest_sample_weeks, sample_patents_dir  # noqa: F401 (re-exported)
from designclip.pipeline.render.patent_views import PatentInput

SAMPLE = sample_patents_dir()


def sample_folders() -> list[Path]:
    """The bundled sample patents' folders, in name order."""
    return sorted(p for p in SAMPLE.iterdir() if p.is_dir())


def patent_input(folder: Path) -> PatentInput:
    """A PatentInput built straight from one unpacked grant folder (its XML and TIFF sheets), no data root."""
    return PatentInput.from_grant_folder(folder)
