"""`designclip deeppatent build` prints where the rebuild is and what is missing; a bad --lists is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from designclip.cli.main import main
from tests.fixtures.deeppatent import LISTS, ingested_deeppatent_weeks


@pytest.mark.usefixtures("prefect_harness")
def test_build_prints_counts_and_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = ingested_deeppatent_weeks(tmp_path)
    assert main(["--data-root", folder.root, "deeppatent", "build", "--lists", str(LISTS)]) == 0
    out = capsys.readouterr().out
    assert "2 of 3 weeks built" in out and "missing: 9 of 26 listed sheets" in out
    assert "training split: 8 sheets of 2 patents" in out and "deeppatent/deeppatent" in out


def test_a_folder_without_lists_says_what_to_give(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-root", str(tmp_path), "deeppatent", "build", "--lists", str(tmp_path)]) == 1
    assert "test_query_patent.txt" in capsys.readouterr().err
