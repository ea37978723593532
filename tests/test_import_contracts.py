"""The import contracts in pyproject.toml ([tool.importlinter]) hold: layers, stage order, no cycles (lint-imports)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def installed_tree(out: Path) -> Path:
    """`designclip/` as the wheel lays it out, from links: the package plus each package-dir folder under its name.

    lint-imports reads the package from one directory; in a checkout (and in an editable install) `pipeline/`,
    `storage/`, `tasks/` and `flows/` sit beside `designclip/`, so it would not see them as `designclip.*`.
    """
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    package = out / "designclip"
    package.mkdir(parents=True)
    for entry in (ROOT / "designclip").iterdir():
        (package / entry.name).symlink_to(entry)
    for name, folder in mapping.items():
        if name != "designclip":
            (package / name.removeprefix("designclip.")).symlink_to(ROOT / folder)
    return out


def test_lint_imports_keeps_every_contract(tmp_path: Path) -> None:
    assert LINT_IMPORTS.exists(), f"no {LINT_IMPORTS}: pip install -e '.[test]' (it brings import-linter)"
    tree = installed_tree(tmp_path / "tree")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")], cwd=tree,
                          env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"lint-imports found broken contracts (rc {done.returncode}):\n{done.stdout}\n{done.stderr}")
