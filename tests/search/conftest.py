"""The search tests' shared setup: release v1 embedded by the tiny export, its image index, a searcher, a server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def indexed_v1(embedded_v1: dict) -> dict:
    """embedded_v1 plus its image (and text) FAISS index, built the way `designclip index` builds it."""
    from designclip.pipeline.index.driver import build_release_index

    build_release_index(embedded_v1["data_root"], embedded_v1["release"], embedded_v1["tag"])
    return embedded_v1


@pytest.fixture(scope="session")
def searcher(indexed_v1: dict) -> Any:
    from designclip.pipeline.index.search import open_searcher

    return open_searcher(indexed_v1["data_root"], indexed_v1["release"], indexed_v1["model"])


@pytest.fixture(scope="session")
def search_url(searcher: Any) -> Iterator[str]:
    """A real server on 127.0.0.1 (free port) over the searcher, for the HTTP and browser tests."""
    from designclip.cli.serve import make_server

    server = make_server(searcher, searcher.catalog, host="127.0.0.1", port=0, release="v1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def vectors(indexed_v1: dict) -> dict[str, Any]:
    """Every indexed image vector (image_ok rows) by key, with patent ids: the exact reference for the index."""
    from designclip.storage.embeddings import load_split_vectors
    from designclip.storage.folder import DataFolder

    folder = DataFolder(indexed_v1["data_root"])
    keys, rows, patents = [], [], {}
    for split in ("train", "val", "test"):
        v = load_split_vectors(folder, indexed_v1["release"], indexed_v1["tag"], split)
        meta = v.meta.to_pylist()
        for i in np.flatnonzero(v.image_ok):
            keys.append(meta[i]["key"])
            rows.append(v.image[i])
            patents[meta[i]["key"]] = meta[i]["patent_id"]
    return {"keys": keys, "image": np.stack(rows), "patents": patents}


@pytest.fixture(scope="session")
def distinct_key(vectors: dict[str, Any]) -> str:
    """The view farthest from its nearest other view. The untrained tiny model puts all drawings within ~1e-5
    cosine of each other, so "a drawing finds itself first" is only a float-rounding-proof claim for this one."""
    sims = vectors["image"] @ vectors["image"].T
    np.fill_diagonal(sims, -np.inf)
    best = int(np.argmin(sims.max(axis=1)))
    assert 1 - sims[best].max() > 1e-4, "no view stands apart from the others: the fixture model changed"
    return vectors["keys"][best]
