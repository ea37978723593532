"""`designclip index --append` and `designclip search|serve --index NAME` on two real releases of the sample (different
patents, the tiny export): the grown index holds both, a second append of a release changes nothing, search and the
page find views of both releases."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.grown_indexes import read_grown_card

from designclip.cli.main import main
from tests.pipeline.index.sample_releases import YEARS, two_sample_releases


@pytest.fixture(scope="module")
def sample_years(release_data: Path, release_v1: dict, tiny_export: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> dict:
    return two_sample_releases(release_data, tiny_export, tmp_path_factory.mktemp("cli-grown") / "data")


@pytest.fixture(scope="module")
def appended(sample_years: dict, prefect_harness: None) -> dict:
    """Both releases appended through the command line, y1 then y2, image and text."""
    root, model = sample_years["data_root"], sample_years["model"]
    for release in YEARS:
        assert main(["--data-root", root, "index", "--append", "--release", release, "--model", model]) == 0
    return sample_years


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_index_append_grows_both_kinds_and_a_second_append_is_a_no_op(appended: dict, capsys) -> None:
    root, model, tag = appended["data_root"], appended["model"], appended["tag"]
    folder = DataFolder(root)
    for kind in ("image", "text"):
        card = read_grown_card(folder, "all", tag, kind)
        assert [r["release"] for r in card["releases"]] == list(YEARS) and card["recall_at_10"] == 1.0
        assert card["releases"][1]["first_id"] == card["releases"][0]["n"]
        assert card["n"] == sum(r["n"] for r in card["releases"])
    assert folder.exists(f"{layout.grown_index_root('all')}/{tag}/image/card.json")
    capsys.readouterr()
    assert main(["--data-root", root, "index", "--append", "--release", "y1", "--model", model]) == 0
    out = capsys.readouterr().out
    assert "Grown index all (image) already holds release y1: nothing appended" in out
    assert "of y1, y2" in out and f"designclip search --index all --model {tag}" in out


def test_search_by_index_name_returns_both_releases(appended: dict, capsys, tmp_path: Path) -> None:
    root, model = appended["data_root"], appended["model"]
    sheet = tmp_path / "hits.png"
    capsys.readouterr()
    assert main(["--data-root", root, "search", "a chair", "--index", "all", "--model", model, "-k", "50",
                 "--out", str(sheet)]) == 0
    out = capsys.readouterr().out
    patents = appended["patents"]["y1"] | appended["patents"]["y2"]
    assert f"{len(patents)} designs for 'a chair'" in out and all(p in out for p in patents)
    assert sheet.read_bytes().startswith(b"\x89PNG")


def test_search_by_index_name_without_a_model_uses_its_only_model(appended: dict, capsys) -> None:
    capsys.readouterr()
    assert main(["--data-root", appended["data_root"], "search", "a chair", "--index", "all", "-k", "2"]) == 0
    captured = capsys.readouterr()
    assert f"Using model {appended['model']} (the only one grown index all holds)" in captured.err
    assert "2 designs for 'a chair'" in captured.out


def test_wrong_arguments_say_what_to_do(appended: dict, capsys) -> None:
    root, model = appended["data_root"], appended["model"]
    capsys.readouterr()
    assert main(["--data-root", root, "search", "a chair", "--release", "y1", "--index", "all", "--model", model]) == 1
    assert "give --release VERSION (its own index) or --index NAME" in capsys.readouterr().err
    assert main(["--data-root", root, "index", "--release", "y1", "--model", model, "--into", "all"]) == 1
    assert "--into names the grown index that --append adds to: add --append" in capsys.readouterr().err
    assert main(["--data-root", root, "search", "a chair", "--index", "years", "--model", model]) == 1
    assert "grow one with `designclip index --append --into years" in capsys.readouterr().err


@pytest.fixture(scope="module")
def grown_url(appended: dict) -> Iterator[str]:
    from designclip.pipeline.index.grown_search import open_any_searcher

    from tests.fixtures.search import serving

    searcher = open_any_searcher(appended["data_root"], None, "all", appended["model"])
    with serving(searcher, release="@all") as url:
        yield url


def test_the_page_serves_hits_and_views_of_both_releases(grown_url: str) -> None:
    status, body = _get(grown_url + "/api/search?q=a+chair&k=50")
    hits = json.loads(body)["hits"]
    assert status == 200 and {h["key"].split("/")[0] for h in hits} == set(YEARS)
    for hit in hits[:3]:
        quoted = urllib.parse.quote(hit["key"], safe="")  # what the page's encodeURIComponent sends
        for route in ("thumb", "view"):
            status, png = _get(f"{grown_url}/{route}/{quoted}.png")
            assert status == 200 and png.startswith(b"\x89PNG"), (route, hit["key"])
    key = hits[0]["key"].split("/")[1]
    assert _get(f"{grown_url}/view/v1%2F{key}.png")[0] == 404  # a release the index does not hold
    assert _get(f"{grown_url}/view/{key}.png")[0] == 404  # a bare key names no release
    status, body = _get(grown_url + "/api/info")
    assert status == 200 and json.loads(body)["release"] == "@all"


def test_status_lists_the_grown_index_without_embeddings_of_its_own(appended: dict) -> None:
    from designclip.pipeline.dag.status_table import output_table
    from designclip.storage.status import collect_outputs

    outputs = collect_outputs(DataFolder(appended["data_root"]), {})
    headers, rows = output_table({"outputs": outputs})
    grown = [r for r in rows if r[0] == "@all"]
    assert len(grown) == 1 and grown[0][2] == "—" and grown[0][-1] == "—"
    image = grown[0][headers.index("image index")]
    assert image.startswith(("HNSW", "Flat", "IVF")), image  # the grown index's own card
