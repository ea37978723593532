"""Caption stage: views -> captions (metadata, LLaVA, vLLM)."""
