"""One release shard's samples -> metadata rows and image/text vectors, encoded a batch at a time."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from designclip.pipeline.embed.encoder import ClipEncoder
from designclip.pipeline.train.data import IMAGE_ERRORS, decode_image
from designclip.storage.embeddings import ReleaseShard


class EmbedError(RuntimeError):
    """A release shard that cannot be embedded as it is; the message says what to rebuild."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def release_sample(key: str, members: dict[str, bytes], shard: ReleaseShard,
                   index: int) -> tuple[dict[str, Any], Any]:
    """(metadata row, decoded image or None) of one release sample; problems are recorded in `error`."""
    errors: list[str] = []
    try:
        meta = json.loads(members["json"])
    except (KeyError, ValueError) as err:
        meta = {}
        errors.append(f"json_unreadable: {err}")
    image = None
    if "png" not in members:
        errors.append("image_unreadable: the sample has no .png member")
    else:
        try:
            image = decode_image(members["png"])
        except IMAGE_ERRORS as err:
            errors.append(f"image_unreadable: {err}")
    caption = members.get("txt", b"").decode("utf-8", errors="replace").strip()
    if not caption:
        errors.append("caption_missing: the sample has no caption text")
    cls = meta.get("cls")
    if cls is None and members.get("cls"):
        cls = members["cls"].decode().strip()
    row = {
        "row": shard.first_row + index, "key": key, "patent_id": _text(meta.get("patent_id")),
        "title": _text(meta.get("title")), "fig": _text(meta.get("fig")), "view": _text(meta.get("view")),
        "split": shard.split, "cls": int(cls) if cls is not None else -1,
        "uspc_class": _text(meta.get("uspc_class")), "locarno_class": _text(meta.get("locarno_class")),
        "caption": caption, "shard": shard.name, "shard_index": index, "image_ok": image is not None,
        "error": "; ".join(errors) or None, "text_ok": bool(caption),
    }
    return row, image


class ShardVectors:
    """Collects one shard's rows and encodes them a batch at a time (images only where they decoded)."""

    def __init__(self, encoder: ClipEncoder, batch_size: int) -> None:
        self.encoder, self.batch_size = encoder, batch_size
        self.rows: list[dict[str, Any]] = []
        self.image: list[np.ndarray] = []
        self.text: list[np.ndarray] = []
        self._pending: list[tuple[dict[str, Any], Any]] = []

    def add(self, row: dict[str, Any], image: Any) -> None:
        self._pending.append((row, image))
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        rows = [r for r, _ in self._pending]
        ok = [i for i, (_, img) in enumerate(self._pending) if img is not None]
        image = np.zeros((len(rows), self.encoder.dim), np.float32)
        if ok:
            image[ok] = self.encoder.encode_images([self._pending[i][1] for i in ok])
        self.image.append(image)
        if self.encoder.has_text:
            self.text.append(self.encoder.encode_texts([r["caption"] for r in rows]))
        self.rows.extend(rows)
        self._pending = []

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        dim = self.encoder.dim
        image = np.concatenate(self.image) if self.image else np.zeros((0, dim), np.float32)
        if not self.encoder.has_text:
            return image, None
        return image, np.concatenate(self.text) if self.text else np.zeros((0, dim), np.float32)
