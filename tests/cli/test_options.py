"""A stage's command-line options come from its options dataclass, or agree with it: one default, one place."""

from __future__ import annotations

import dataclasses

from designclip.pipeline.caption.options import CaptionerSpec
from designclip.pipeline.release.options import ReleaseOptions
from designclip.pipeline.render.driver import RenderStageOptions
from designclip.pipeline.train.options import LoopSettings, LossWeights, TrainOptions

from designclip.cli.main import _train_options, build_parser
from designclip.cli.options import dataclass_from_args

DATES = ["--start", "2021-01-05", "--end", "2021-01-05"]


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_train_flags_are_made_from_train_options_and_build_them_back():
    args = parse("train", "--release", "r", "--run", "x")
    assert _train_options(args) == TrainOptions()  # every default is the dataclass's own
    assert dataclass_from_args(LoopSettings, args) == LoopSettings()
    skipped = {"model_config", "weights"}
    for f in dataclasses.fields(TrainOptions):
        assert f.name in skipped or hasattr(args, f.name), f"designclip train has no flag for TrainOptions.{f.name}"
    args = parse("train", "--release", "r", "--run", "x", "--lr", "0.01", "--objective", "arcface", "--steps", "7",
                 "--lambda-view", "0", "--no-keep-ink", "--log-every", "3")
    options = _train_options(args)
    assert (options.lr, options.objective, options.steps, options.keep_ink) == (0.01, "arcface", 7, False)
    assert options.weights == LossWeights(view=0.0)
    assert dataclass_from_args(LoopSettings, args).log_every == 3


def test_release_render_and_caption_flags_default_to_their_options():
    release, spec = ReleaseOptions(), CaptionerSpec()
    args = parse("release", "--version", "v1")
    assert (args.splits, args.split_by, args.shard_samples, int(args.shard_mib * 2**20)) == (
        release.ratios, release.split_by, release.shard_samples, release.shard_bytes)
    assert (f"px{args.size}", args.captions, args.drop_excluded, args.include_fallbacks) == (
        release.profile, release.caption_source, release.drop_excluded, release.include_fallbacks)
    render, args = RenderStageOptions(), parse("render", *DATES)
    assert (args.size, args.margin, args.shard_samples, int(args.shard_mib * 2**20)) == (
        render.pixels.size, render.pixels.margin, render.max_samples, render.max_bytes)
    args = parse("caption", *DATES)
    assert (f"px{args.size}", args.max_new_tokens, args.loader_workers, args.batch_size) == (
        spec.profile, spec.max_new_tokens, spec.loader_workers, spec.batch_size)
