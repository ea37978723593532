"""`designclip search "..."`, `serve` and `evaluate` without --release/--model: the data root's only release and
model are used (and named); with several, the error lists them; with none, it says what to run."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import pytest
from designclip.storage import layout

from designclip.cli.defaults import fill_release_and_model
from designclip.cli.main import main


def _copy_indexed(src: Path, dst: Path, tag: str, as_release: str = "v1") -> None:
    """Release v1 with its embeddings and indexes by `tag`, copied under `dst` as `as_release`."""
    for rel, to in ((layout.release_dir("v1"), layout.release_dir(as_release)),
                    (layout.embed_dir("v1", tag), layout.embed_dir(as_release, tag)),
                    (layout.index_model_dir("v1", tag), layout.index_model_dir(as_release, tag))):
        shutil.copytree(src / rel, dst / to)


@pytest.fixture
def one_indexed(indexed_v1: dict, tmp_path: Path) -> dict:
    root = tmp_path / "data"
    _copy_indexed(Path(indexed_v1["data_root"]), root, indexed_v1["tag"])
    return {**indexed_v1, "data_root": str(root)}


def test_search_without_release_or_model_uses_the_only_ones(one_indexed: dict, capsys) -> None:
    assert main(["--data-root", one_indexed["data_root"], "search", "a wheel", "-k", "2"]) == 0
    captured = capsys.readouterr()
    assert f"Using release v1 and model {one_indexed['model']}" in captured.err
    assert "2 designs for 'a wheel'" in captured.out


def test_serve_without_release_or_model_uses_the_only_ones(one_indexed: dict, monkeypatch, capsys) -> None:
    called: dict[str, Any] = {}
    monkeypatch.setattr("designclip.cli.serve.serve", lambda *a, **kw: called.update(args=a, kw=kw))
    assert main(["--data-root", one_indexed["data_root"], "serve", "--port", "0"]) == 0
    assert called["args"][1:3] == ("v1", one_indexed["model"])
    assert "Using release v1 and model" in capsys.readouterr().err


def test_several_releases_are_listed_and_one_can_be_chosen(one_indexed: dict, capsys) -> None:
    root = Path(one_indexed["data_root"])
    _copy_indexed(root, root, one_indexed["tag"], as_release="v2")
    assert main(["--data-root", str(root), "search", "a wheel"]) == 1
    err = capsys.readouterr().err
    assert "2 releases/models are indexed for search" in err
    for release in ("v1", "v2"):
        assert f"--release {release} --model {one_indexed['model']}" in err
    assert main(["--data-root", str(root), "search", "a wheel", "--release", "v2", "-k", "1"]) == 0
    assert "Using release v2 and model" in capsys.readouterr().err
    assert main(["--data-root", str(root), "search", "a wheel", "--release", "v9"]) == 1
    err = capsys.readouterr().err
    assert "nothing indexed for search" in err and "for --release v9" in err and "--release v1" in err


def test_an_empty_data_root_says_what_to_run(tmp_path: Path, capsys) -> None:
    assert main(["--data-root", str(tmp_path), "search", "a wheel"]) == 1
    assert "run `designclip demo`" in capsys.readouterr().err


def test_evaluate_uses_the_only_release_and_trained_model(one_indexed: dict, capsys) -> None:
    root = Path(one_indexed["data_root"])
    (root / layout.model_dir("run-a")).mkdir(parents=True)
    args = argparse.Namespace(data_root=str(root), release=None, model=None, pretrained=None)
    fill_release_and_model(args, "evaluate")
    assert (args.release, args.model) == ("v1", "run-a")
    assert "Using release v1 and model run-a" in capsys.readouterr().err
    (root / layout.model_dir("run-b")).mkdir(parents=True)
    args = argparse.Namespace(data_root=str(root), release=None, model=None, pretrained=None)
    with pytest.raises(ValueError, match="2 releases/models are ready to evaluate") as err:
        fill_release_and_model(args, "evaluate")
    assert "--release v1 --model run-a" in str(err.value) and "--release v1 --model run-b" in str(err.value)
    args = argparse.Namespace(data_root=str(root), release=None, model="run-b", pretrained=None)
    fill_release_and_model(args, "evaluate")
    assert (args.release, args.model) == ("v1", "run-b")
