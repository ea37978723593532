"""Search over a grown index on real releases: two releases of the sample (different patents) embedded by the tiny
export, appended one after the other; hits come from both, with their metadata and views, scored like exact search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.index.append import append_release
from designclip.pipeline.index.grown_search import ReleasesCatalog, open_any_searcher, open_grown_searcher
from designclip.pipeline.index.search import SearchSetupError
from designclip.storage.embeddings import load_split_vectors
from designclip.storage.folder import DataFolder
from designclip.storage.release_samples import ReleaseCatalog

from tests.pipeline.index.sample_releases import YEARS, two_sample_releases


@pytest.fixture(scope="module")
def grown(release_data: Path, release_v1: dict, tiny_export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    data = two_sample_releases(release_data, tiny_export, tmp_path_factory.mktemp("grown") / "data")
    for release in YEARS:
        append_release(data["data_root"], release, data["tag"])
    return data


def _image_vectors(root: str, tag: str) -> tuple[list[str], np.ndarray]:
    """Every usable image vector of both releases, keyed RELEASE/KEY: the exact reference."""
    keys, rows = [], []
    for release in YEARS:
        for split in ("train", "val", "test"):
            v = load_split_vectors(DataFolder(root), release, tag, split)
            meta = v.meta.to_pylist()
            for i in np.flatnonzero(v.image_ok):
                keys.append(f"{release}/{meta[i]['key']}")
                rows.append(v.image[i])
    return keys, np.stack(rows)


def test_hits_come_from_both_releases_with_metadata_views_and_exact_scores(grown: dict) -> None:
    searcher = open_grown_searcher(grown["data_root"], "all", grown["model"])
    keys, vectors = _image_vectors(grown["data_root"], grown["tag"])
    assert searcher.size == len(keys) and sorted(searcher.keys_by_id.values()) == sorted(keys)
    hits = searcher.search_text("a chair with curved legs", k=len(keys), per_patent=False)
    assert sorted(h.key for h in hits) == sorted(keys)  # every view of both releases, once
    for hit in hits:
        release = hit.key.split("/")[0]
        assert hit.patent_id in grown["patents"][release] and hit.title and hit.fig
    query = searcher.encoder.encode_texts(["a chair with curved legs"])[0]
    exact = np.sort(vectors @ query)[::-1]
    assert np.allclose([h.score for h in hits], exact, atol=1e-5)
    per_patent = searcher.search_text("a chair with curved legs", k=100)
    assert {h.key.split("/")[0] for h in per_patent} == set(YEARS)
    assert len(per_patent) == len(grown["patents"]["y1"] | grown["patents"]["y2"])
    folder = DataFolder(grown["data_root"])
    for hit in per_patent[:4]:
        release, key = hit.key.split("/")
        assert searcher.png(hit.key) == ReleaseCatalog(folder, release).png(key)
    assert searcher.hits_sheet(per_patent[:4]).startswith(b"\x89PNG")


def test_catalog_knows_only_the_releases_held(grown: dict) -> None:
    catalog = ReleasesCatalog(DataFolder(grown["data_root"]), list(YEARS), "@all")
    key = ReleaseCatalog(DataFolder(grown["data_root"]), "y2").keys()[0]
    assert f"y2/{key}" in catalog and f"y1/{key}" not in catalog and key not in catalog
    assert "v1/" + key not in catalog and "y2/../x" not in catalog
    with pytest.raises(KeyError, match="not in @all"):
        catalog.png(f"v1/{key}")


def test_missing_grown_index_and_wrong_arguments_say_what_to_run(grown: dict) -> None:
    with pytest.raises(SearchSetupError, match="grow one with `designclip index --append --into years"):
        open_grown_searcher(grown["data_root"], "years", grown["model"])
    with pytest.raises(ValueError, match="give --release VERSION .* or --index NAME"):
        open_any_searcher(grown["data_root"], "y1", "all", grown["model"])
    with pytest.raises(ValueError, match="one of them"):
        open_any_searcher(grown["data_root"], None, None, grown["model"])
    assert open_any_searcher(grown["data_root"], None, "all", grown["model"]).size > 0
