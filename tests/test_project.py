"""Promises the repository makes: CI runs the README's test command; the compose file is valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quickstart)


def test_readme_has_two_quickstart_commands_and_ci_runs_the_test_one() -> None:
    commands = _quickstart_commands()
    assert len(commands) == 2 and "designclip demo" in commands[0] and "pytest" in commands[1]
    ci_lines = (ROOT / ".ci/run").read_text().splitlines()
    assert commands[1] in ci_lines


def test_compose_file_parses_with_its_services() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"postgres", "prefect-server", "pipeline", "search"} <= set(compose["services"])
    search = compose["services"]["search"]
    assert search["command"][:3] == ["serve", "--host", "0.0.0.0"] and "8765:8765" in search["ports"]
    server = compose["services"]["prefect-server"]
    assert "prefect server start" in server["command"]
    assert server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
