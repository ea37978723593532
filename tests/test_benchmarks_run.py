"""Every benchmark runs as benchmarks/RESULTS.md documents it (`python benchmarks/X.py`), from any folder.

They import the installed `designclip` package and their own folder's `support.py`, never tests/ or pytest.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name != "support.py")
FORBIDDEN = re.compile(r"^\s*(from tests[.\s]|import tests\b|import pytest\b|from pytest\b|sys\.path\.(insert|append))",
                       re.MULTILINE)


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_answers_help_from_outside_the_repository(script: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"python benchmarks/{script.name} --help failed:\n{done.stdout}\n{done.stderr}"
    assert "usage:" in done.stdout


def test_benchmarks_need_neither_tests_nor_pytest() -> None:
    found = {p.name: m.group(0).strip() for p in [*SCRIPTS, BENCHMARKS / "support.py"]
             if (m := FORBIDDEN.search(p.read_text()))}
    assert not found, f"benchmarks importing tests/ or pytest, or editing sys.path: {found}"
