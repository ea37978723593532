"""Shared fixtures: the real sample patents, archives built from them, one embedded Prefect per session."""

from __future__ import annotations

import os
import tempfile

# Prefect reads its settings at import: point it at a private home before anything imports it.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="designclip-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "designclip" / "sample" / "patents"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


def patent_folder(name: str) -> Path:
    """A real fixture patent folder by its patent id prefix, e.g. 'USD0909824'."""
    return next(p for p in SAMPLE.iterdir() if p.name.startswith(name))


@pytest.fixture(scope="session")
def prefect_harness():
    """One embedded Prefect server for the whole session (starting one takes 10-20 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
