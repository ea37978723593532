"""Releases with stored embeddings and no images, for the grown index tests: each year its own patents, the same
embedding-like clusters (one model), written through the embeddings store the real embed stage writes with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from designclip.pipeline.index.synthetic import clustered_vectors
from designclip.storage import layout
from designclip.storage.embeddings import EMBED_META, release_fingerprint, write_encoder_record, write_shard_embeddings
from designclip.storage.folder import DataFolder

WEIGHTS = "a" * 64
YEAR_ROWS = 4000


def write_release(root: Path | str, release: str, year: int, shards: dict[str, list[int]], tag: str = "syn",
                  dim: int = 32, weights: str = WEIGHTS, seed: int = 0, bad_rows: int = 1,
                  scale: float = 1.0) -> dict[str, np.ndarray]:
    """Release `release` (sizes.json + marker) embedded by `tag`: clustered `dim`-d rows, keys USD{year}NNNNNN-1.

    The first `bad_rows` rows of the first shard "did not decode" (zero image vector, image_ok False). `scale`
    multiplies every stored vector (1.0: L2-normalised, as every encoder writes them). Returns key -> image vector
    of the usable rows.
    """
    folder = DataFolder(root)
    folder.write_json(layout.release_marker(release), {"fingerprint": {"weeks": [f"{year}-01-05"]}})
    for split, sizes in shards.items():
        folder.write_json(layout.release_file(release, layout.release_sizes_name(split)),
                          {f"{i:05d}.tar": n for i, n in enumerate(sizes)})
    write_encoder_record(folder, release, tag, {"tag": tag, "dim": dim, "has_text": True, "weights_sha256": weights,
                                                "spec": {"model": tag}})
    total = sum(sum(s) for s in shards.values())
    if total > YEAR_ROWS:
        raise ValueError(f"at most {YEAR_ROWS} rows per release")
    offset = (year % 10) * YEAR_ROWS  # one pool of the same clusters (one model), each year its own rows
    image = clustered_vectors(offset + total, dim, clusters=16, seed=seed)[0][offset:]
    text = image + np.random.default_rng(year + 1).standard_normal(image.shape).astype(np.float32) * 0.05
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    fingerprint = release_fingerprint(folder, release)
    usable: dict[str, np.ndarray] = {}
    start = serial = 0
    for split, sizes in shards.items():
        for number, n in enumerate(sizes):
            img, txt = image[start:start + n].copy() * scale, text[start:start + n].copy() * scale
            rows = []
            for i in range(n):
                key = f"USD{year}{serial:06d}-1"
                serial += 1
                bad = start == 0 and i < bad_rows
                if bad:
                    img[i] = 0
                else:
                    usable[key] = img[i]
                rows.append({"row": i, "key": key, "patent_id": key[:-2], "title": f"design {key[:-2]}", "fig": "1",
                             "view": "front", "split": split, "cls": 3, "uspc_class": "D6", "locarno_class": "06",
                             "caption": "a chair", "shard": f"{split}/{number:05d}.tar", "shard_index": i,
                             "image_ok": not bad, "error": "image_unreadable: broken" if bad else None,
                             "text_ok": True})
            write_shard_embeddings(folder, release, tag, split, number, img, txt,
                                   pa.Table.from_pylist(rows, schema=EMBED_META), {"release_fingerprint": fingerprint})
            start += n
    return usable
