"""Prefect flows: composition only; the CLI calls them."""
