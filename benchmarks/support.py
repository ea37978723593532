"""Where several benchmarks find the bundled sample patents.

A benchmark imports it as `support` (its own folder is first on sys.path when run as `python benchmarks/X.py`);
nothing here comes from tests/ or needs pytest.
"""

from __future__ import annotations

from pathlib import Path

from designclip.pipeline.ingest.sample import sample_patents_dir

SAMPLE = sample_patents_dir()


def sample_folders() -> list[Path]:
    """The bundled sample patents' folders, in name order."""
    return sorted(p for p in SAMPLE.iterdir() if p.is_dir())
