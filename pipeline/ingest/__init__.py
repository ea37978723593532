"""Ingest stage: weekly archives -> parsed grants, figures and sheets."""
