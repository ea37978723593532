"""Shared fixtures: the real sample patents and one embedded Prefect per session; the stage fixtures in
tests/fixtures/ are registered here once, so a test file uses them wherever it lives in the mirrored tree."""

from __future__ import annotations

import os
import tempfile

# Prefect reads its settings at import: point it at a private home before anything imports it.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="designclip-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from pathlib import Path  # noqa: E402

# Import Prefect now, while sys.stderr is pytest's session-long capture: Prefect binds its console log handler to
# the sys.stderr of its first import, and a first import inside a `capsys` test would bind it to a stream that
# test closes, breaking every later flow's logging.
import prefect.main  # noqa: E402, F401
import pytest  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "designclip" / "sample" / "patents"

pytest_plugins = [
    "tests.fixtures.release",  # release_data, release_v1: real rendered weeks and release v1
    "tests.fixtures.caption",  # caption_data, data: rendered shards with no captions yet
    "tests.fixtures.embed",  # tiny_export, embedded_v1, release_copy
    "tests.fixtures.search",  # indexed_v1, searcher, search_url, vectors, distinct_key
    "tests.fixtures.evaluate",  # tiny_encoder
    "tests.fixtures.train",  # train_data
    "tests.fixtures.s3",  # s3_endpoint: a moto S3 server on 127.0.0.1 with a bucket
]


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
