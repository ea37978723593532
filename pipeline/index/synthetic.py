"""Synthetic unit vectors (uniform, and embedding-like clusters) to size and check an index plan without a model.

benchmarks/index.py measures recall and speed on them at sizes no real release has yet; the index tests use them.
"""

from __future__ import annotations

import numpy as np


def _normalised(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def uniform_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Uniform on the unit sphere: the worst case for any approximate index (no structure to exploit)."""
    rng = np.random.default_rng(seed)
    return _normalised(rng.standard_normal((n, dim), dtype=np.float32))


def clustered_vectors(n: int, dim: int, clusters: int | None = None, rank: int | None = None, seed: int = 0,
                      spread: float = 0.6, noise: float = 0.25, n_queries: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embedding-like rows: Gaussian clusters in a low-rank subspace, a shared mean direction, isotropic noise.

    Real CLIP vectors are anisotropic (a large common component, most variance in a few dozen directions) and
    cluster by subject; uniform random vectors have neither. Queries come from the same clusters but are not
    database rows. Returns (database, queries), both L2-normalised float32.
    """
    rng = np.random.default_rng(seed)
    clusters = clusters or max(8, n // 500)
    rank = rank or max(8, dim // 8)
    basis = np.linalg.qr(rng.standard_normal((dim, rank)))[0].astype(np.float32).T  # (rank, dim) orthonormal
    mean = rng.standard_normal(dim).astype(np.float32)
    mean *= 0.8 / np.linalg.norm(mean)
    centers = rng.standard_normal((clusters, rank), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)

    def draw(count: int) -> np.ndarray:
        out = np.empty((count, dim), dtype=np.float32)
        for start in range(0, count, 65536):
            m = min(65536, count - start)
            which = rng.integers(0, clusters, m)
            low = centers[which] + rng.standard_normal((m, rank), dtype=np.float32) * (spread / np.sqrt(rank))
            block = low @ basis + mean
            block += rng.standard_normal((m, dim), dtype=np.float32) * (noise / np.sqrt(dim))
            out[start:start + m] = block
        return _normalised(out)

    return draw(n), draw(n_queries)
