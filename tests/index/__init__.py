"""Index tests (their synthetic vectors: designclip.pipeline.index.synthetic)."""
