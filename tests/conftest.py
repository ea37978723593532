"""Shared fixtures: the real sample patents, archives built from them, one embedded Prefect per session."""

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


@pytest.fixture(scope="session")
def release_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with real sample weeks ingested and rendered (px512) and one week only ingested."""
    from designclip.pipeline.render.driver import RENDER
    from designclip.storage.folder import DataFolder

    from tests.builders import ingest_sample_weeks
    from tests.release.conftest import NOT_RENDERED, RENDERED

    root = tmp_path_factory.mktemp("release")
    data = root / "data"
    ingest_sample_weeks(data, [*RENDERED, NOT_RENDERED], root)
    for week in RENDERED:
        RENDER.run(DataFolder(data), week)
    return data


@pytest.fixture(scope="session")
def release_v1(release_data: Path) -> dict:
    """The release most release and train tests read: all three splits, several train shards."""
    from designclip.pipeline.release.driver import build_release

    from tests.release.conftest import RATIOS, SHARD_SAMPLES

    return build_release("v1", str(release_data), ratios=RATIOS, shard_samples=SHARD_SAMPLES)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained designclip-tiny DesignClip exported like a finished run (seeded, offline, about a second)."""
    import torch
    from designclip.pipeline.train.export import export_model
    from designclip.pipeline.train.model import build_design_clip
    from designclip.pipeline.train.model_configs import tiny_model_config

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, _, _, _ = build_design_clip("designclip-tiny", model_config=tiny_model_config())
    out = tmp_path_factory.mktemp("models") / "tiny-untrained"
    return export_model(model, out, "designclip-tiny", {"run": "tiny-untrained"})


@pytest.fixture(scope="session")
def embedded_v1(release_data: Path, release_v1: dict, tiny_export: Path) -> dict:
    """Release v1 (all splits) embedded by the tiny export: what the index, search and evaluate tests read."""
    from designclip.pipeline.embed.driver import embed_release
    from designclip.pipeline.embed.encoder import EncoderSpec

    summary = embed_release(str(release_data), "v1", EncoderSpec(str(tiny_export)))
    return {"data_root": str(release_data), "release": "v1", "tag": summary["model_tag"], "model": str(tiny_export)}
