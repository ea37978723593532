"""The built wheel installs one import namespace, `designclip`: it works next to other packages named storage/tasks."""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "designclip", "pipeline", "storage", "tasks", "flows")
FOLDERS = ("pipeline", "storage", "tasks", "flows")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("setuptools.command.bdist_wheel") is None,
                                reason="building the wheel offline (--no-build-isolation) needs setuptools >= 70.1 "
                                       "in the test environment")


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of its sources (the build writes build/ and *.egg-info beside them)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
         str(out), str(src)])
    return next(out.glob("designclip_pipeline-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the wheel; it sees the test environment's packages (torch, prefect, ...) through a
    .pth path, so nothing is downloaded. The test environment's own .pth files (its editable install) are not run."""
    where = tmp_path_factory.mktemp("venv") / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(where)])
    python = where / "bin" / "python"
    own = run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    (Path(own) / "test-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel)])
    return where


def test_wheel_holds_one_designclip_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "designclip/pipeline/render/segment.py" in names
    assert "designclip/storage/layout.py" in names and "designclip/cli/main.py" in names
    assert "designclip/model_configs/designclip-tiny.json" in names
    stray = sorted({n.split("/")[0] for n in names if n.split("/")[0] in FOLDERS})
    assert not stray, f"top-level packages in the wheel besides designclip: {stray}"


def test_wheel_holds_every_module_of_the_sources(wheel: Path) -> None:
    """A subpackage missing from [tool.setuptools] packages would be left out of the wheel without an error."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    expected = {f"{package.replace('.', '/')}/{py.relative_to(ROOT / folder).as_posix()}"
                for package, folder in mapping.items() for py in (ROOT / folder).rglob("*.py")}
    missing = sorted(expected - set(zipfile.ZipFile(wheel).namelist()))
    assert not missing, f"modules left out of the wheel (add their packages to [tool.setuptools]): {missing}"


def test_installed_wheel_runs_beside_packages_named_storage_and_tasks(venv: Path, tmp_path: Path) -> None:
    others = tmp_path / "others"
    for name in ("storage", "tasks"):
        (others / name).mkdir(parents=True)
        (others / name / "__init__.py").write_text(f"WHO = 'another {name}'\n")
    env = {**os.environ, "PYTHONPATH": str(others)}
    env.pop("PYTHONHOME", None)
    away = tmp_path / "elsewhere"  # not the repository: its folders must not be what gets imported
    away.mkdir()
    done = run([str(venv / "bin" / "designclip"), "--help"], cwd=away, env=env)
    assert "usage: designclip" in done.stdout
    check = ("import designclip, designclip.pipeline.render.segment, designclip.storage.layout, storage, tasks; "
             "print(designclip.pipeline.render.segment.__file__); print(storage.WHO, '/', tasks.WHO)")
    done = run([str(venv / "bin" / "python"), "-c", check], cwd=away, env=env)
    where, others_said = done.stdout.strip().splitlines()
    assert Path(where).is_relative_to(venv), f"designclip came from {where}, not the installed wheel"
    assert others_said == "another storage / another tasks"
