"""The `higuchi` preset holds the seed notebook's settings; explicit fields win over it."""

from __future__ import annotations

import pytest
from designclip.pipeline.train.higuchi import HIGUCHI, HIGUCHI_MODEL, preset_options
from designclip.pipeline.train.options import TrainError


def test_preset_defaults_are_the_notebooks():
    h = HIGUCHI
    assert (h.model, h.backbone, h.objective, h.preset) == (HIGUCHI_MODEL, "timm", "arcface", "higuchi")
    assert (h.arcface_s, h.arcface_m, h.easy_margin, h.focal_gamma) == (30.0, 0.5, True, 1.5)
    assert (h.optimizer, h.lr, h.lr_head, h.weight_decay, h.schedule) == ("adam", 1e-4, 5e-3, 0.0, "constant")
    assert (h.batch_size, h.epochs, h.dropout, h.pretrained) == (128, 25.0, 0.5, "default")
    h.check()


def test_explicit_fields_win_and_unknown_preset_is_refused():
    assert preset_options("higuchi", batch_size=32).batch_size == 32
    with pytest.raises(TrainError, match="higuchi"):
        preset_options("nope")
    with pytest.raises(TrainError, match="arcface"):
        preset_options("higuchi", objective="clip").check()


def test_cli_preset_gives_defaults_and_set_flags_win():
    from designclip.cli.main import _train_options, build_parser

    args = build_parser().parse_args(["train", "--deeppatent", "dp", "--run", "r", "--preset", "higuchi",
                                      "--batch-size", "32", "--timm-kwargs", '{"drop_path_rate": 0.1}'])
    options = _train_options(args)
    assert options == preset_options("higuchi", batch_size=32, timm_kwargs={"drop_path_rate": 0.1})
    plain = build_parser().parse_args(["train", "--release", "v1", "--run", "r", "--objective", "arcface"])
    assert _train_options(plain).backbone == "open_clip" and _train_options(plain).preset is None


def test_cli_flag_typed_at_the_generic_default_still_wins_over_the_preset():
    from designclip.pipeline.train.options import TrainOptions

    from designclip.cli.main import _train_options, build_parser

    generic = TrainOptions()
    argv = ["train", "--deeppatent", "dp", "--run", "r", "--preset", "higuchi", "--batch-size",
            str(generic.batch_size), "--lr", str(generic.lr), "--no-easy-margin", "--weight-decay",
            str(generic.weight_decay), "--model", generic.model]
    options = _train_options(build_parser().parse_args(argv))
    assert (options.batch_size, options.lr, options.easy_margin, options.weight_decay, options.model) == (
        generic.batch_size, generic.lr, False, generic.weight_decay, generic.model)
    assert options.preset == "higuchi" and options.focal_gamma == 1.5  # untyped fields keep the preset's values
    assert options.batch_size != HIGUCHI.batch_size and options.lr != HIGUCHI.lr  # so the test can tell them apart
