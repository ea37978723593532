"""The train tests read the real release v1 (session fixtures `release_data`, `release_v1` in tests/conftest.py)."""
