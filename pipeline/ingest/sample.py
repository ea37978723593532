"""The bundled sample: 30 real 2021 design patents (public domain), unpacked as `designclip/sample/patents/<id>/`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_patents_dir() -> Path:
    """The folder of the bundled sample patents (one folder per grant: its XML and TIFF sheets)."""
    return Path(str(resources.files("designclip").joinpath("sample/patents")))

