"""`designclip` command line: parse options, call a flow, print where the outputs are."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

from designclip.cli.options import (
    add_dataclass_arguments,
    add_download_options,
    add_keep_raw,
    argument_problem,
    dataclass_from_args,
    explicit_dests,
    explicit_fields,
)
from designclip.cli.prefect_setup import apply_prefect_defaults, prefect_start_advice
from designclip.cli.printers import (
    parse_date,
    print_captions,
    print_release,
    print_render,
    print_tables,
    print_train,
)
from designclip.pipeline.ingest.sample import sample_patents_dir
from designclip.pipeline.train.options import (
    BACKBONES,
    OBJECTIVES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    LoopSettings,
    LossWeights,
    TrainOptions,
)
from designclip.storage import layout

TRAIN_HELP = {
    "model": "open_clip architecture (ViT-B-32 is DesignCLIP's 'ViT-B', 512-d), hf-hub:… or local-dir:…",
    "pretrained": "initial weights: openai, laion2b_…, … (hub downloads need a network)",
    "objective": "clip: DesignCLIP, every --lambda term; caption-only: the image-caption term alone (a plain CLIP "
                 "fine-tune, IMPACT's baseline; the --lambda options are ignored); arcface: an image-only retrieval "
                 "model on patent identity",
    "batch_size": "views per step and process",
    "views_per_patent": "views a patent brings to a batch (0: all)",
    "steps": "optimizer steps (none: --epochs over the train split)",
    "epochs": "epochs over the train split when --steps is not given",
    "lr": "learning rate of the CLIP towers / backbone",
    "lr_head": "learning rate of the class / margin heads",
    "weight_decay": "AdamW weight decay",
    "warmup_steps": "linear warm-up steps",
    "grad_clip": "max gradient norm (0: off)",
    "precision": "autocast (auto: bf16 on GPU, fp32 on CPU)",
    "grad_checkpointing": "recompute activations in the backward pass (less memory, slower)",
    "seed": "seed of the data order and initialisation",
    "arcface_s": "ArcFace scale",
    "arcface_m": "ArcFace angular margin",
    "shuffle_patents": "patents in the shuffle buffer of the training stream",
    "keep_ink": "thicken strokes before downscaling views (thin lines vanish at 64-224 px otherwise)",
    "view_temperature": "temperature of the multi-view term (SupCon's 0.07; the CLIP term learns its own)",
    "backbone": "open_clip: --model is an open_clip tower; timm: --model is any timm name (arcface only, gray "
                "sheets through --preset's transforms), e.g. swinv2_base_window12to24_192to384_22kft1k",
    "preset": "higuchi: the seed's SwinV2 + ArcFace settings as defaults (flags you set win); also the timm "
              "backbone's sheet transforms",
    "easy_margin": "ArcFace easy margin (margin only where cos > 0)",
    "focal_gamma": "focal loss gamma on the ArcFace logits (0: plain cross-entropy)",
    "dropout": "dropout of the timm embedding head",
    "image_size": "timm sheet input side (none: the preset's)",
    "optimizer": "adamw (open_clip's betas) or adam (the seed's)",
    "schedule": "cosine (with --warmup-steps) or constant",
}
LAMBDA_HELP = {"clip": "weight of the image-caption contrastive term (0 turns it off)",
               "cls": "weight of the US class head CE term (0 turns it off)",
               "prompt": "weight of the image vs class prompt contrastive term (0 turns it off)",
               "view": "weight of the multi-view (same patent) contrastive term (0 turns it off)",
               "locarno": "weight of the Locarno class head CE term (0 turns it off)"}
LOOP_HELP = {"checkpoint_every": "steps between checkpoints", "log_every": "steps between metric lines",
             "workers": "DataLoader processes decoding images per training process (none: the CPUs per GPU; 2 on a "
                        "CPU run)"}


def cmd_ingest(args: argparse.Namespace) -> int:
    from designclip.flows.ingest import ingest_flow

    if not args.archive and (args.start is None or args.end is None):
        print("designclip ingest: give --start and --end (or --archive FILE ...)", file=sys.stderr)
        return 2
    start = args.start or dt.date.min
    end = args.end or dt.date.max
    ingest_flow(start=start, end=end, data_root=args.data_root, source=args.source, base_url=args.base_url,
                max_downloads=args.max_downloads, archives=args.archive, keep_raw=args.keep_raw,
                download_limit=args.download_limit)
    print_tables(args.data_root)
    return 0


def cmd_sample_mirror(args: argparse.Namespace) -> int:
    from designclip.pipeline.ingest.mirror import build_bdss_mirror

    out = Path(args.out).resolve()
    built = build_bdss_mirror(sample_patents_dir(), out)
    print(f"{len(built)} weekly archives under {out}; ingest them with --base-url {out.as_uri()}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: the whole DAG (`designclip run`) on the bundled sample from a local BDSS mirror, CPU-sized."""
    from designclip.cli.run import print_pipeline
    from designclip.flows.pipeline import PipelineFailed, pipeline_flow
    from designclip.pipeline.dag.run_profile import default_profile
    from designclip.pipeline.ingest.mirror import build_bdss_mirror

    start, end = dt.date(2021, 1, 1), dt.date(2021, 12, 31)
    with tempfile.TemporaryDirectory(prefix="designclip-mirror-") as tmp:
        built = build_bdss_mirror(sample_patents_dir(), Path(tmp))
        print(f"Bundled sample: {len(built)} weekly archives (30 design patents granted in 2021)")
        try:
            summary = pipeline_flow(start=start, end=end, data_root=args.data_root, base_url=Path(tmp).as_uri(),
                                    release="sample-2021", run="sample-2021-tiny", profile=default_profile(gpu=False))
        except PipelineFailed as exc:
            print_pipeline(exc.summary)
            print(f"\n{exc}", file=sys.stderr)
            return 1
    print_pipeline(summary)
    demo_search(args.data_root, release="sample-2021", model="sample-2021-tiny")
    return 0


def demo_search(data_root: str, release: str, model: str) -> None:
    """One example text search on the trained tiny model, with a contact sheet of the hits."""
    from designclip.cli.search import print_hits
    from designclip.pipeline.index.search import open_searcher
    from designclip.storage.folder import DataFolder

    searcher = open_searcher(data_root, release, model)
    query = "a shoe with laces"
    hits = searcher.search_text(query, k=8)
    print_hits(hits, repr(query))
    out = DataFolder(data_root).path("search-example.png")
    Path(out).write_bytes(searcher.hits_sheet(hits, f"{query!r} on {release} ({model})"))
    print(f"  contact sheet: {out}")
    print(f"\nSearch page: designclip serve --release {release} --model {model}  (then open http://127.0.0.1:8765/)")
    print(f"Where everything stands: designclip --data-root {data_root} status")


def cmd_render(args: argparse.Namespace) -> int:
    from designclip.flows.render import render_flow

    rows = render_flow(start=args.start, end=args.end, data_root=args.data_root, size=args.size,
                       margin=args.margin, workers=args.workers, shard_samples=args.shard_samples,
                       shard_bytes=int(args.shard_mib * 2**20), runner=args.runner, dask_address=args.dask_address,
                       dask_workers=args.dask_workers)
    print_render(rows, args.data_root, f"px{args.size}")
    return 0


def cmd_caption(args: argparse.Namespace) -> int:
    from designclip.flows.caption import caption_flow

    summary = caption_flow(start=args.start, end=args.end, data_root=args.data_root, profile=f"px{args.size}",
                           captioner=args.captioner, model=args.model, batch_size=args.batch_size,
                           max_new_tokens=args.max_new_tokens, loader_workers=args.loader_workers,
                           processes=args.processes)
    print_captions(summary, args.data_root, f"px{args.size}")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from designclip.flows.release import release_flow

    years = [int(y) for y in args.years.split(",")] if args.years else None
    result = release_flow(version=args.version, data_root=args.data_root, profile=f"px{args.size}", years=years,
                          ratios=args.splits, split_by=args.split_by, shard_samples=args.shard_samples,
                          shard_bytes=int(args.shard_mib * 2**20), caption_source=args.captions,
                          exclude_patents=args.exclude_patents, drop_excluded=args.drop_excluded,
                          include_fallbacks=args.include_fallbacks)
    print_release(result, args.data_root)
    return 0


def _train_options(args: argparse.Namespace):
    """TrainOptions from the flags its own fields made (a --model-config file replaces --model; --preset gives the
    defaults of the fields left unset)."""
    config, model = None, args.model
    if args.model_config:
        config = json.loads(Path(args.model_config).read_text())
        model = Path(args.model_config).stem
    weights = dataclass_from_args(LossWeights, args, prefix="lambda-")
    given = {"model": model, "model_config": config, "weights": weights, "timm_kwargs": args.timm_kwargs}
    if args.preset:
        from designclip.pipeline.train.higuchi import preset_options

        typed = explicit_dests(args)
        set_by_other_flags = {"model": "model" in typed or config is not None, "model_config": config is not None,
                              "weights": any(d.startswith("lambda_") for d in typed),
                              "timm_kwargs": args.timm_kwargs is not None}
        chosen = {k: v for k, v in given.items() if set_by_other_flags[k]}
        return preset_options(args.preset, **explicit_fields(TrainOptions, args, **chosen))
    return dataclass_from_args(TrainOptions, args, **given)


def cmd_train(args: argparse.Namespace) -> int:
    options = _train_options(args)
    loop = dataclass_from_args(LoopSettings, args)
    if bool(args.release) == bool(args.deeppatent):
        print("designclip train: give --release VERSION or --deeppatent DIR (one of them)", file=sys.stderr)
        return 2
    if args.deeppatent:  # in this process (one per GPU under `accelerate launch`), no Prefect flow
        from designclip.pipeline.train.driver import train_deeppatent

        stats = train_deeppatent(args.data_root, args.deeppatent, args.run, options, loop)
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under `accelerate launch`: one process per GPU, no Prefect
        from designclip.pipeline.train.driver import train_run

        stats = train_run(args.data_root, args.release, args.run, options, loop)
    else:
        from designclip.flows.train import train_flow

        stats = train_flow(release=args.release, run=args.run, data_root=args.data_root, options=options, loop=loop)
    if int(os.environ.get("RANK", "0")) == 0:
        print_train(stats)
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    print_tables(args.data_root)
    return 0


def _shard_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shard-samples", type=int, default=layout.DEFAULT_SHARD_SAMPLES,
                        help=f"samples per shard at most (default {layout.DEFAULT_SHARD_SAMPLES})")
    mib = layout.DEFAULT_SHARD_BYTES / 2**20
    parser.add_argument("--shard-mib", type=float, default=mib, help=f"MiB per shard at most (default {mib:g})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="designclip", description=__doc__)
    parser.add_argument("--data-root", default=os.environ.get("DESIGNCLIP_DATA_ROOT", layout.DEFAULT_DATA_ROOT),
                        help="local folder or fsspec URL such as s3://bucket/prefix (env DESIGNCLIP_DATA_ROOT)")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser("ingest", help="download and parse the weekly grant archives of a date range")
    ingest.add_argument("--start", type=parse_date, help="first grant date, e.g. 2021-01-01")
    ingest.add_argument("--end", type=parse_date, help="last grant date, e.g. 2021-12-31")
    ingest.add_argument("--source", choices=("bdss", "odp"), default="bdss",
                        help="bdss: bulkdata.uspto.gov layout; odp: Open Data Portal API (needs USPTO_API_KEY)")
    ingest.add_argument("--base-url", help="mirror to read from instead of the USPTO (http(s):// or file://)")
    add_download_options(ingest)
    add_keep_raw(ingest)
    ingest.add_argument("--archive", nargs="+", metavar="FILE",
                        help="ingest archives already on disk (I*.tar, I*.zip, ipgYYMMDD.xml/zip) instead")
    ingest.set_defaults(func=cmd_ingest)

    demo = sub.add_parser("demo", help="run the pipeline on the bundled sample weeks (no network)")
    demo.set_defaults(func=cmd_demo)

    mirror = sub.add_parser("sample-mirror", help="write the bundled sample as a BDSS-layout mirror folder")
    mirror.add_argument("--out", required=True)
    mirror.set_defaults(func=cmd_sample_mirror)

    render = sub.add_parser("render", help="cut the ingested sheets into per-FIG. views in WebDataset shards")
    render.add_argument("--start", type=parse_date, required=True, help="first grant date, e.g. 2021-01-01")
    render.add_argument("--end", type=parse_date, required=True, help="last grant date, e.g. 2021-12-31")
    render.add_argument("--size", type=int, default=512, help="square view size in pixels (default 512)")
    render.add_argument("--margin", type=float, default=0.03, help="crop margin, share of the view's side")
    render.add_argument("--workers", type=int, help="render processes (default: one per CPU)")
    render.add_argument("--runner", choices=("local", "dask"), default="local",
                        help="where the weeks render: this machine (default) or a Dask cluster")
    render.add_argument("--dask-address", help="scheduler of an existing Dask cluster, e.g. tcp://host:8786 "
                        "(default with --runner dask: a local cluster)")
    render.add_argument("--dask-workers", type=int, help="worker processes of the local Dask cluster")
    _shard_options(render)
    render.set_defaults(func=cmd_render)

    caption = sub.add_parser("caption", help="caption every rendered view (LLaVA on a GPU, metadata text on a CPU)")
    caption.add_argument("--start", type=parse_date, required=True, help="first grant date, e.g. 2021-01-01")
    caption.add_argument("--end", type=parse_date, required=True, help="last grant date, e.g. 2021-12-31")
    caption.add_argument("--captioner", choices=("metadata", "llava", "vllm"),
                         help="backend (default: llava when a CUDA GPU is present, else metadata)")
    caption.add_argument("--model", help="hub id or local folder (default llava-hf/llava-1.5-7b-hf)")
    caption.add_argument("--batch-size", type=int, help="images per generate call (default: tuned to GPU memory)")
    caption.add_argument("--max-new-tokens", type=int, default=77, help="caption length cap in tokens (default 77)")
    caption.add_argument("--loader-workers", type=int, default=2, help="CPU processes preparing images (default 2)")
    caption.add_argument("--processes", type=int, default=1,
                         help="GPUs to use: >1 runs `accelerate launch`, each process owning whole shards")
    caption.add_argument("--size", type=int, default=512, help="which rendered view size to caption (default 512)")
    caption.set_defaults(func=cmd_caption)

    release = sub.add_parser("release", help="collect rendered weeks into a versioned, split dataset release")
    release.add_argument("--version", required=True, help="release name, e.g. 2021.1 (immutable once written)")
    release.add_argument("--years", help="only these grant years, e.g. 2021,2022 (default: all rendered)")
    release.add_argument("--splits", default="90/5/5", help="train/val/test shares by patent (default 90/5/5)")
    release.add_argument("--split-by", choices=("hash", "year"), default="hash",
                         help="hash of the patent id (default) or grant year (latest year = test)")
    release.add_argument("--size", type=int, default=512, help="which rendered view size to release (default 512)")
    release.add_argument("--captions", default="metadata",
                         help="caption set for .txt: a set id or backend name from `designclip caption` "
                              "(default: metadata, the render stage's caption)")
    release.add_argument("--exclude-patents", nargs="+", metavar="FILE",
                         help="keep these patents and their near-duplicates out of train and val: files of patent "
                              "ids one per line, or DeepPatent list files as they are (DeepPatent's own test/val "
                              "patents are excluded by default when a release covers their 2018-2019 weeks)")
    release.add_argument("--drop-excluded", action="store_true",
                         help="leave excluded patents out of the release instead of putting them in test")
    release.add_argument("--include-fallbacks", action="store_true",
                         help="also release whole-sheet fallbacks of sheets that hold several FIG.s (left out by "
                              "default: the same multi-FIG. picture would appear once per FIG.)")
    _shard_options(release)
    release.set_defaults(func=cmd_release)

    train = sub.add_parser("train", help="train DesignCLIP (or an ArcFace retrieval model) on a release or a "
                                          "DeepPatent folder")
    train.add_argument("--release", help="release version to train on (its train split)")
    train.add_argument("--deeppatent", metavar="DIR",
                       help="train ArcFace on a DeepPatent-layout folder instead (DIR/lists/train_patent_trn.txt + "
                            "DIR/images/, what `designclip deeppatent build` writes): one sample per sheet, one "
                            "class per patent")
    train.add_argument("--timm-kwargs", type=json.loads, metavar="JSON",
                       help='extra timm.create_model arguments for --backbone timm, e.g. \'{"drop_path_rate": 0.1}\'')
    train.add_argument("--run", required=True, help="run name: runs/RUN (checkpoints, metrics) and models/RUN")
    train.add_argument("--model-config", help="a custom open_clip model config (JSON file) instead of --model")
    add_dataclass_arguments(train, TrainOptions, TRAIN_HELP, skip=("model_config", "weights", "timm_kwargs"),
                            choices={"objective": OBJECTIVES, "precision": PRECISIONS, "backbone": BACKBONES,
                                     "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "preset": ("higuchi",)})
    add_dataclass_arguments(train, LossWeights, LAMBDA_HELP, prefix="lambda-")
    add_dataclass_arguments(train, LoopSettings, LOOP_HELP, skip=("stop_after",))
    train.set_defaults(func=cmd_train)

    from designclip.cli import deeppatent as cli_deeppatent
    from designclip.cli import run as cli_run
    from designclip.cli import schedule as cli_schedule
    from designclip.cli import search as cli_search
    from designclip.cli import status as cli_status

    cli_run.add_commands(sub)
    cli_search.add_commands(sub)
    cli_status.add_commands(sub)
    cli_schedule.add_commands(sub)
    cli_deeppatent.add_commands(sub)

    tables = sub.add_parser("tables", help="row counts of the tables under the data root")
    tables.set_defaults(func=cmd_tables)
    return parser


def main(argv: list[str] | None = None) -> int:
    apply_prefect_defaults()  # before anything imports prefect
    args = build_parser().parse_args(argv)
    problem = argument_problem(args)  # checked here, not after ~20 s of Prefect start-up
    if problem:
        print(f"designclip {args.command}: {problem}", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted: finished weeks are kept; rerun the same command to continue", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one readable line instead of a traceback for users
        if os.environ.get("DESIGNCLIP_DEBUG"):
            raise
        message = prefect_start_advice(exc) or str(exc) or type(exc).__name__
        print(f"designclip {args.command}: {message}\n(set DESIGNCLIP_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
