"""The only code that knows paths, schemas, atomic writes and done markers."""

from designclip.storage.folder import DataFolder

__all__ = ["DataFolder"]
