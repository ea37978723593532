"""DataLoader worker processes that survive being forked from a process that has run a Prefect flow."""

from __future__ import annotations

import threading


def forget_parent_exit_hooks(_worker_id: int) -> None:
    """A forked loader worker inherits the parent's thread-exit hooks; inside a Prefect run those drain Prefect's
    log/event service threads, which do not exist in the worker, and the failing hook made it exit with code 1."""
    hooks = getattr(threading, "_threading_atexits", None)
    if isinstance(hooks, list):
        hooks.clear()
