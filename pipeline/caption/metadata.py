"""The CPU default backend: the caption made from title, view and class (no model), so the DAG runs anywhere."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from designclip.pipeline.caption.captioner import CaptionRequest, CaptionResult
from designclip.pipeline.common.classes import us_design_class_titles
from designclip.pipeline.render.metadata_caption import CAPTION_VERSION, metadata_caption


class MetadataCaptioner:
    """Title + view + US design class as text; the same sentence the render stage stores as `caption_metadata`."""

    backend = "metadata"
    model_id = "metadata"
    prompt_version = CAPTION_VERSION

    def __init__(self) -> None:
        self._titles = us_design_class_titles()
        self.batch_size = 1

    def settings(self) -> dict[str, Any]:
        return {}

    def _caption(self, meta: dict[str, Any]) -> str:
        code = meta.get("uspc_class")
        class_title = f"{code} ({self._titles[code]})" if code in self._titles else None
        return metadata_caption(meta.get("title"), meta.get("view"), class_title)

    def caption(self, requests: Sequence[CaptionRequest]) -> Iterator[CaptionResult]:
        for r in requests:
            started = time.perf_counter()
            yield CaptionResult(r.key, self._caption(r.meta), seconds=time.perf_counter() - started)

    def close(self) -> None:
        return None
