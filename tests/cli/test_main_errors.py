"""Mistakes on the command line end with a non-zero exit and a message that says what was wrong and what to do:
reversed dates (before Prefect starts), a mistyped --base-url, an unknown flow run id, a data root that is a file,
an unknown release."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from designclip.cli.main import main
from tests.fixtures.httpmirror import make_sample_week, serve_mirror


def _no_pipeline(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    raise AssertionError("the pipeline (and Prefect) started")


@pytest.mark.parametrize("command", ["run", "ingest", "rerun --failed", "render", "caption", "status"])
def test_reversed_dates_are_refused_before_prefect_starts(command: str, tmp_path: Path, capsys,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import designclip.flows.ingest

    import designclip.cli.run

    monkeypatch.setattr(designclip.cli.run, "_run_pipeline", _no_pipeline)
    monkeypatch.setattr(designclip.flows.ingest, "ingest_flow", _no_pipeline)
    argv = ["--data-root", str(tmp_path), *command.split(), "--start", "2021-03-01", "--end", "2021-01-01"]
    assert main(argv) == 2
    assert "--start 2021-03-01 is after --end 2021-01-01: swap them" in capsys.readouterr().err


def test_status_of_a_data_root_that_is_a_file_fails(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data.txt"
    root.write_text("not a folder")
    assert main(["--data-root", str(root), "status"]) == 2
    assert f"the data root {root} is a file, not a folder: pass --data-root FOLDER" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["search a-chair", "serve"])
def test_an_unknown_release_is_named_with_the_releases_there_are(command: str, tmp_path: Path, capsys) -> None:
    for version in ("2021", "sample-2021"):
        (tmp_path / "releases" / version).mkdir(parents=True)
        (tmp_path / "releases" / version / "release.json").write_text("{}")
    argv = ["--data-root", str(tmp_path), *command.split(), "--release", "2012", "--model", "m"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "no release '2012' under" in err and "releases there: 2021, sample-2021" in err
    assert "no embeddings" not in err


def test_a_malformed_flow_run_id_is_refused_before_prefect_starts(tmp_path: Path, capsys) -> None:
    assert main(["--data-root", str(tmp_path), "rerun", "last-tuesday"]) == 2
    assert "'last-tuesday' is not a flow run id (a UUID" in capsys.readouterr().err


@pytest.mark.usefixtures("prefect_harness")
def test_an_unknown_flow_run_id_is_named_not_printed_as_none(tmp_path: Path, capsys) -> None:
    run_id = str(uuid.uuid4())
    assert main(["--data-root", str(tmp_path), "rerun", run_id]) == 1
    err = capsys.readouterr().err
    assert f"no flow run {run_id} on " in err and "prefect flow-run ls" in err
    assert ": None" not in err


@pytest.mark.usefixtures("prefect_harness")
def test_a_mistyped_file_base_url_fails_naming_the_folder_tried(tmp_path: Path, capsys) -> None:
    typo = (tmp_path / "mirorr").as_uri()
    argv = ["--data-root", str(tmp_path / "data"), "ingest", "--start", "2021-01-01", "--end", "2021-01-31",
            "--base-url", typo]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "no weekly archive between 2021-01-01 and 2021-01-31" in err
    assert f"{typo}/data/patent/grant/redbook/2021/: check --base-url" in err


@pytest.mark.usefixtures("prefect_harness")
def test_run_with_an_http_base_url_that_answers_404_fails_naming_the_url(tmp_path: Path, capsys) -> None:
    make_sample_week(tmp_path / "mirror", "I20210105.tar")
    with serve_mirror(tmp_path / "mirror") as mirror:
        typo = f"{mirror.base_url}/uspto"
        argv = ["--data-root", str(tmp_path / "data"), "run", "--start", "2021-01-01", "--end", "2021-01-31",
                "--base-url", typo]
        assert main(argv) == 1
    captured = capsys.readouterr()
    assert f"{typo}/data/patent/grant/redbook/2021/: check --base-url" in captured.out + captured.err
