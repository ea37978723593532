#!/bin/sh
# The GPU check in one command: installs the carried wheels when WHEELS names their folder, then runs it (see README).
set -e
cd "$(dirname "$0")/.."
if [ -n "$WHEELS" ]; then pip install --no-index --find-links "$WHEELS" open_clip_torch pyarrow; fi
exec python benchmarks/gpu_check.py "$@"
