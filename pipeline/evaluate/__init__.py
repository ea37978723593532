"""Evaluate stage: retrieval, classification and DeepPatent scores of a model's vectors."""
