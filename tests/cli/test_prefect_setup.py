"""Prefect's embedded server gets a generous start-up timeout (the user's own setting wins), and when it still does
not start, e.g. on a busy machine, the command says what to do instead of Prefect's bare time-out."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from designclip.cli.prefect_setup import (
    EPHEMERAL_STARTUP_TIMEOUT_S,
    STARTUP_TIMEOUT_ENV,
    apply_prefect_defaults,
    prefect_start_advice,
)

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment without any Prefect server address or start-up setting, with a private PREFECT_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PYTHONPATH": str(ROOT), **extra}


def test_defaults_are_generous_and_a_users_own_setting_wins() -> None:
    env: dict[str, str] = {}
    apply_prefect_defaults(env)
    assert int(env[STARTUP_TIMEOUT_ENV]) == EPHEMERAL_STARTUP_TIMEOUT_S >= 120
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    mine = {STARTUP_TIMEOUT_ENV: "7"}
    apply_prefect_defaults(mine)
    assert mine[STARTUP_TIMEOUT_ENV] == "7"


def test_the_command_line_sets_the_timeout_before_prefect_reads_it(tmp_path: Path) -> None:
    code = ("from designclip.cli.main import main; main(['--data-root', {root!r}, 'tables']); "
            "from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as s; print('T', s.value())")
    for extra, expected in (({}, EPHEMERAL_STARTUP_TIMEOUT_S), ({STARTUP_TIMEOUT_ENV: "45"}, 45)):
        out = subprocess.run([sys.executable, "-c", code.format(root=str(tmp_path / "data"))], capture_output=True,
                             text=True, env=_env(tmp_path, **extra), timeout=120, check=True).stdout
        assert f"T {expected}" in out.splitlines(), out


def test_advice_is_found_in_the_exception_chain_and_only_there() -> None:
    try:
        try:
            raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server.")
        except RuntimeError as inner:
            raise ValueError("flow could not start") from inner
    except ValueError as outer:
        advice = prefect_start_advice(outer, {STARTUP_TIMEOUT_ENV: "3"})
    assert advice and "within 3 s" in advice and "prefect server start" in advice and "PREFECT_API_URL" in advice
    assert prefect_start_advice(ValueError("something else")) is None


@pytest.fixture
def cpu_hog() -> Iterator[None]:
    """Four busy-looping processes for the test's duration (the machine a new user's first demo met)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(4)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(timeout=10)


@pytest.mark.usefixtures("cpu_hog")
def test_a_server_that_does_not_start_in_time_says_what_to_do(tmp_path: Path) -> None:
    began = time.monotonic()
    argv = [sys.executable, "-m", "designclip.cli.main", "--data-root", str(tmp_path / "data"), "ingest",
            "--start", "2021-01-05", "--end", "2021-01-05", "--base-url", (tmp_path / "mirror").as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(tmp_path, **{STARTUP_TIMEOUT_ENV: "1"}),
                          timeout=180)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Prefect's embedded server did not start within 1 s" in done.stderr, done.stderr[-2000:]
    assert "`prefect server start`" in done.stderr and "PREFECT_API_URL=http://127.0.0.1:4200/api" in done.stderr
    assert time.monotonic() - began < 120
