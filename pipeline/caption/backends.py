"""How a caption backend is built by name: the model backends (and their heavy imports) load only when chosen."""

from __future__ import annotations

from designclip.pipeline.caption.captioner import (
    BACKENDS,
    DEFAULT_LLAVA_MODEL,
    Captioner,
    CaptionerError,
    GenerationSettings,
)


def make_captioner(backend: str, model_id: str | None = None, batch_size: int | None = None,
                   generation: GenerationSettings | None = None, device: str | None = None,
                   loader_workers: int = 2) -> Captioner:
    """Build the chosen backend; model backends are imported only when chosen."""
    generation = generation or GenerationSettings()
    if backend == "metadata":
        from designclip.pipeline.caption.metadata import MetadataCaptioner

        return MetadataCaptioner()
    if backend == "llava":
        from designclip.pipeline.caption.llava import LlavaCaptioner

        return LlavaCaptioner(model_id or DEFAULT_LLAVA_MODEL, batch_size=batch_size, generation=generation,
                              device=device, loader_workers=loader_workers)
    if backend == "vllm":
        from designclip.pipeline.caption.vllm import VllmCaptioner

        return VllmCaptioner(model_id or DEFAULT_LLAVA_MODEL, batch_size=batch_size, generation=generation)
    raise CaptionerError(f"unknown captioner {backend!r}: use one of {', '.join(BACKENDS)}")
