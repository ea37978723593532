"""A real Prefect server backed by a real PostgreSQL (both started here on 127.0.0.1) stores a flow of ours."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.scale.conftest import SIZE, WEEKS

ROOT = Path(__file__).resolve().parents[2]
WEEK = WEEKS[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path:
    """Debian's PostgreSQL server binaries, installed with apt when missing (as root); skips otherwise."""
    def found() -> list[str]:
        return sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))

    if not found():
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip("PostgreSQL is not installed and installing it needs root and apt-get")
        proc = subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], capture_output=True, text=True)
        if proc.returncode != 0 or not found():
            pytest.skip(f"apt-get install postgresql failed: {proc.stderr[-500:]}")
    return Path(found()[-1]).parent


def as_postgres(*cmd: str) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` system user when we are root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway cluster in a temporary folder on 127.0.0.1; yields its asyncpg URL to a fresh database."""
    bindir = postgres_bin()
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running PostgreSQL as root needs runuser to switch to the postgres user")
    tmp = tempfile.mkdtemp(prefix="designclip-pg-")
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    data, port = f"{tmp}/data", free_port()
    try:
        subprocess.run(as_postgres(str(bindir / "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync",
                                   "-E", "UTF8"), check=True, capture_output=True)
        subprocess.run(as_postgres(str(bindir / "pg_ctl"), "-D", data, "-l", f"{tmp}/server.log", "-w", "-o",
                                   f"-h 127.0.0.1 -p {port} -k {tmp} -c fsync=off", "start"),
                       check=True, capture_output=True)
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "prefect"],
                       check=True, capture_output=True)
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect"
    finally:
        subprocess.run(as_postgres(str(bindir / "pg_ctl"), "-D", data, "-m", "immediate", "stop"),
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def prefect_server(database_url: str, home: Path) -> Iterator[str]:
    """`prefect server start` on 127.0.0.1 with that database; yields its API URL once /api/health answers."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false", "NO_PROXY": "127.0.0.1"}
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("prefect server did not start:\n" + (home / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield api
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_a_flow_run_on_a_prefect_server_with_postgresql(scale_ingested, tmp_path):
    data = tmp_path / "data"
    subprocess.run(["cp", "-r", str(scale_ingested), str(data)], check=True)
    home = tmp_path / "prefect-home"
    home.mkdir()
    with postgres_server() as database_url, prefect_server(database_url, home) as api:
        env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(home), "NO_PROXY": "127.0.0.1"}
        run = subprocess.run([sys.executable, "-m", "designclip.cli.main",
                              "--data-root", str(data), "render", "--start", str(WEEK), "--end", str(WEEK),
                              "--size", str(SIZE), "--workers", "1"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]

        flows = httpx.post(f"{api}/flow_runs/filter", json={"flows": {"name": {"any_": ["render"]}}}).json()
        assert len(flows) == 1 and flows[0]["state_type"] == "COMPLETED", flows
        flow_run = flows[0]["id"]
        tasks = httpx.post(f"{api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run]}}}).json()
        assert [(t["name"], t["state_type"]) for t in tasks] == [(f"render-{WEEK}", "COMPLETED")]
        port = database_url.rsplit(":", 1)[1].split("/")[0]
        row = subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "prefect", "-tA", "-c",
                              f"select state_type from flow_run where id = '{flow_run}'"],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert row == "COMPLETED"  # the row is in PostgreSQL itself, not in a SQLite file
    assert not list(home.glob("*.db"))
