"""Thin Prefect tasks: retries, cache keys and progress around pure `pipeline/` functions."""
