"""Private copies of release v1 for the embed tests that change a release or write other tags."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from designclip.storage import layout


def copy_release(release_data: Path, dst: Path, version: str = "v1") -> Path:
    """A data root holding only a copy of `version` (the shared data root stays untouched)."""
    src = release_data / layout.release_dir(version)
    shutil.copytree(src, dst / layout.release_dir(version))
    return dst


def rewrite_tar(path: Path, edit: Callable[[str, bytes], bytes]) -> None:
    """Rewrite a shard in place with each member's bytes passed through `edit(name, data)` (order kept)."""
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if m.isfile()]  # type: ignore[union-attr]
    with tarfile.open(path, "w") as out:
        for info, data in members:
            new = edit(info.name, data)
            info.size = len(new)
            out.addfile(info, io.BytesIO(new))


@pytest.fixture
def release_copy(release_data: Path, release_v1: dict, tmp_path: Path) -> Path:
    """A private data root with release v1 (no embeddings yet)."""
    return copy_release(release_data, tmp_path / "data")
