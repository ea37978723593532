"""The only code that knows paths, schemas, atomic writes and done markers."""

from storage.folder import DataFolder

__all__ = ["DataFolder"]
