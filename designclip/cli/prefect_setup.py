"""Prefect settings the command line needs before Prefect is imported, and what to say when its server won't start.

Without PREFECT_API_URL every command starts Prefect's embedded (ephemeral) server; Prefect waits 20 s for it, which
a busy machine can exceed ("Timed out while attempting to connect to ephemeral Prefect API server").
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
EPHEMERAL_STARTUP_TIMEOUT_S = 180
"""Seconds the embedded server may take to start (Prefect's own default is 20) unless the user set their own."""
_EPHEMERAL_FAILURE = "ephemeral Prefect API server"


def apply_prefect_defaults(environ: MutableMapping[str, str] = os.environ) -> None:
    """Our defaults for Prefect's settings; a value the user set wins. Call before anything imports prefect
    (Prefect reads its settings from the environment once, at import)."""
    environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry calls from offline machines
    environ.setdefault(STARTUP_TIMEOUT_ENV, str(EPHEMERAL_STARTUP_TIMEOUT_S))


def prefect_start_advice(exc: BaseException, environ: MutableMapping[str, str] = os.environ) -> str | None:
    """What to do when `exc` (or an exception it came from) is the embedded server not starting in time; else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if _EPHEMERAL_FAILURE in str(current):
            waited = environ.get(STARTUP_TIMEOUT_ENV, "20")
            return (f"Prefect's embedded server did not start within {waited} s (is the machine busy?). Start a "
                    "Prefect server once and point designclip at it: run `prefect server start` in another terminal, "
                    "then `export PREFECT_API_URL=http://127.0.0.1:4200/api` and run the command again; or allow the "
                    f"embedded server more time with {STARTUP_TIMEOUT_ENV}=600.")
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
