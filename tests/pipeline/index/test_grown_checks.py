"""What an append refuses, through the real append path: another model (tag, weights, width), vectors that are not
unit length, a release held already with other vectors, views held under another release. The index stays as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from designclip.pipeline.index.append import append_release
from designclip.pipeline.index.driver import IndexOptions
from designclip.pipeline.index.faiss_index import IndexBuildError
from designclip.pipeline.index.grown_checks import AppendRefused
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.grown_indexes import read_grown_card

from tests.pipeline.index.synthetic_releases import write_release

SHARDS = {"train": [600], "val": [100], "test": [100]}
OPTIONS = IndexOptions(flat_max=500)


@pytest.fixture()
def grown(tmp_path: Path) -> dict:
    """A grown index `all` holding release 2021.1 by model `syn`."""
    root = str(tmp_path / "data")
    write_release(root, "2021.1", 2021, SHARDS)
    card = append_release(root, "2021.1", "syn", options=OPTIONS)
    return {"root": root, "card": card}


def _unchanged(grown: dict) -> None:
    card = read_grown_card(DataFolder(grown["root"]), "all", "syn", "image")
    assert card == {k: v for k, v in grown["card"].items() if k not in ("skipped", "path")}


@pytest.mark.parametrize(("other", "said"), [
    ({"weights": "b" * 64}, "weights_sha256 'aaaaaaaaaaaa"),
    ({"dim": 16}, "dim 32 -> 16"),
])
def test_another_model_under_the_same_tag_is_refused(grown: dict, other: dict, said: str) -> None:
    write_release(grown["root"], "2022.1", 2022, SHARDS, **other)
    with pytest.raises(AppendRefused, match="embedded by another model") as refused:
        append_release(grown["root"], "2022.1", "syn", options=OPTIONS)
    assert said in str(refused.value) and "`designclip embed --release 2022.1 --model syn`" in str(refused.value)
    _unchanged(grown)


def test_another_model_tag_is_refused_with_what_to_do(grown: dict) -> None:
    write_release(grown["root"], "2022.1", 2022, SHARDS, tag="vitb16-2022")
    with pytest.raises(AppendRefused, match="holds vectors of model syn, not vitb16-2022") as refused:
        append_release(grown["root"], "2022.1", "vitb16-2022", options=OPTIONS)
    assert "Embed the release with syn" in str(refused.value) and "--into all-vitb16-2022" in str(refused.value)
    assert not DataFolder(grown["root"]).exists(layout.grown_index_dir("all", "vitb16-2022", "image"))
    _unchanged(grown)
    assert append_release(grown["root"], "2022.1", "vitb16-2022", name="all-vitb16-2022", options=OPTIONS)["n"] > 0


def test_vectors_that_are_not_unit_length_are_refused(grown: dict) -> None:
    write_release(grown["root"], "2022.1", 2022, SHARDS, scale=2.0)
    with pytest.raises(IndexBuildError, match="not L2-normalised"):
        append_release(grown["root"], "2022.1", "syn", options=OPTIONS)
    _unchanged(grown)


def test_a_release_held_already_with_other_vectors_is_refused(grown: dict) -> None:
    folder = DataFolder(grown["root"])
    stats = layout.embed_stats("2021.1", "syn", "test", 0)
    folder.write_json(stats, {**folder.read_json(stats), "seconds": 99})  # the shard was embedded again
    with pytest.raises(AppendRefused, match="already holds release 2021.1 \\(ids 0..798\\), embedded differently"):
        append_release(grown["root"], "2021.1", "syn", options=OPTIONS)
    _unchanged(grown)


def test_views_held_under_another_release_are_refused(grown: dict) -> None:
    write_release(grown["root"], "2021.2", 2021, SHARDS)  # a revision of 2021: the same views again
    with pytest.raises(AppendRefused, match="has 799 views that grown index 'all' holds already from release"):
        append_release(grown["root"], "2021.2", "syn", options=OPTIONS)
    _unchanged(grown)


def test_a_release_without_embeddings_or_a_bad_name_is_refused(grown: dict) -> None:
    with pytest.raises(AppendRefused, match="run `designclip embed --release 2030.1 --model syn` first"):
        append_release(grown["root"], "2030.1", "syn", options=OPTIONS)
    with pytest.raises(ValueError, match="grown index name '../x'"):
        append_release(grown["root"], "2021.1", "syn", name="../x", options=OPTIONS)
