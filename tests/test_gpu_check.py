"""benchmarks/gpu_check.py --cpu: every step of the GPU check runs end to end with tiny models, without Prefect."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def test_cpu_mode_runs_every_step_and_writes_the_table_as_json(tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(SCRIPT), "--cpu", "--json", str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {r["key"]: r for r in report["rows"]}
    assert report["mode"] == "cpu" and report["prefect_imported"] is False
    assert list(rows) == ["caption.batch1", "caption.tuned", "caption.speedup", "train.raw", "train.ours",
                          "train.ratio", "embed.rate", "faiss.build", "higuchi.train", "higuchi.25_epochs"]
    assert report["total_s"] < 120 and wall < 180, f"the CPU mode took {report['total_s']}s (wall {wall:.0f}s)"
    # every caption came back with exactly the forced number of tokens, at batch 1 and at batch 8
    assert rows["caption.batch1"]["captions_ok"] == rows["caption.batch1"]["images"] == 4
    assert rows["caption.tuned"]["captions_ok"] == rows["caption.tuned"]["images"] == 16
    assert rows["caption.tuned"]["what"] == "tuned batch 8" and rows["caption.tuned"]["new_tokens"] == 8
    for key, num, den in (("caption.speedup", "caption.tuned", "caption.batch1"), ("train.ratio", "train.ours",
                                                                                  "train.raw")):
        assert rows[key]["value"] == pytest.approx(rows[num]["value"] / rows[den]["value"], rel=0.01)
    assert all(rows[k]["value"] > 0 for k in rows)
    assert rows["embed.rate"]["images"] == 64 and rows["embed.rate"]["dim"] == 64  # 16 patents x 4 views, tiny dim
    assert rows["faiss.build"]["vectors"] == 20_000 and rows["faiss.build"]["what"].startswith("IVF")
    assert rows["higuchi.train"]["what"].startswith("swinv2_tiny_window8_256 64px, batch 4, focal ArcFace")
    assert rows["higuchi.25_epochs"]["value"] == pytest.approx(25 * 254_000 / rows["higuchi.train"]["value"] / 3600,
                                                               rel=0.01)
    assert all(r["met"] is None for r in rows.values())  # goals are judged on the GPU run only
    assert rows["caption.tuned"]["goal"] == 15 and rows["caption.speedup"]["goal"] == 4
    assert rows["train.ratio"]["goal"] == 0.9
    assert "| train | ours / raw |" in done.stdout and "| caption | tuned batch 8 |" in done.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where no GPU is visible")
def test_gpu_mode_without_a_gpu_says_what_to_do(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--json", str(tmp_path / "x.json")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "no CUDA GPU visible" in done.stderr and "--cpu" in done.stderr
    assert not (tmp_path / "x.json").exists()
