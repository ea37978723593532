"""`designclip rerun` needs a flow run id or a mode, and `run --until` takes only known stages."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest


def test_rerun_command_needs_a_flow_run_id_or_a_mode(tmp_path: Path):
    from designclip.cli.run import add_commands

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["rerun", "--start", "2021-01-01", "--end", "2021-01-31"])
    args.data_root = str(tmp_path)
    with pytest.raises(ValueError, match="FLOW_RUN_ID, --failed, --from STAGE or --force STAGE"):
        args.func(args)
    args = parser.parse_args(["rerun", "--failed"])
    args.data_root = str(tmp_path)
    with pytest.raises(ValueError, match="give --start and --end"):
        args.func(args)
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--start", "2021-01-01", "--end", "2021-01-31", "--until", "download"])
