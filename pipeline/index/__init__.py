"""Index stage: FAISS index planning and building, and design search over it."""
