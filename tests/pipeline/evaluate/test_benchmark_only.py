"""The DeepPatent benchmark scored with no release: a model and a rebuild's lists + images are enough (the CLI path
`designclip evaluate --deeppatent-lists DIR --deeppatent-images DIR --model M` without --release)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tests.pipeline.evaluate.test_benchmark import fixture_benchmark


def test_a_model_is_scored_on_the_benchmark_alone_with_its_report_under_reports_at_deeppatent(
        tmp_path: Path, tiny_export: Path, capsys) -> None:
    from designclip.pipeline.embed.encoder import EncoderSpec, load_encoder
    from designclip.pipeline.evaluate.benchmark import score_benchmark

    from designclip.cli.search import add_commands

    lists, images, _ = fixture_benchmark(tmp_path / "bench")
    root = tmp_path / "data"
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-root")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["--data-root", str(root), "evaluate", "--model", str(tiny_export),
                              "--deeppatent-lists", str(lists), "--deeppatent-images", str(images)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    reports = list((root / "reports" / "@deeppatent").glob("*/report.json"))
    assert len(reports) == 1, "one report, under the benchmark's own folder (no release)"
    report = json.loads(reports[0].read_text())
    assert set(report["deeppatent_benchmark"]["splits"]) == {"test", "val"}
    # the same numbers as scoring the same encoder directly (the CLI adds no other preprocessing)
    direct, _ = score_benchmark(load_encoder(EncoderSpec(str(tiny_export)), device="cpu"), lists, images, 64)
    for split in ("test", "val"):
        assert report["deeppatent_benchmark"]["splits"][split]["mAP"] == direct["splits"][split]["mAP"]
        assert report["deeppatent_benchmark"]["splits"][split]["mAP_pml"] == direct["splits"][split]["mAP_pml"]
    markdown = (reports[0].parent / "report.md").read_text()
    assert "| 83.90 | 92.20 |" in markdown and "| sheets | test | 2 | 9 |" in markdown
    assert "on DeepPatent test: mAP" in out and "(PML)" in out and "report.md" in out
    import numpy as np

    top10 = np.load(reports[0].parent / "deeppatent" / "result.npy")  # the DIRA file of the test lists
    assert top10.shape == (2, 10) and top10.dtype == np.int64
