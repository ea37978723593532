"""`designclip run | rerun`: the whole DAG on a date range, and its rerun after a failure or a forced stage."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from designclip.cli.options import add_download_options, add_keep_raw
from designclip.cli.printers import parse_date
from designclip.pipeline.dag.stages import STAGES
from designclip.storage import layout

FLOW_RUN_HELP = ("a Prefect flow run id (designclip-pipeline or one stage's flow): run it again with its "
                 "parameters (while the Prefect server still has that run)")


def _profile(args: argparse.Namespace):
    """The CPU/GPU default profile with the command line's stage options on top."""
    from designclip.pipeline.dag.run_profile import default_profile

    return default_profile().with_options(captioner=args.captioner, caption_model=args.caption_model,
                                          model=args.model, pretrained=args.pretrained, steps=args.steps,
                                          epochs=args.epochs, batch_size=args.batch_size, baseline=args.baseline)


def print_pipeline(summary: dict[str, Any]) -> None:
    """Each finished stage's own summary (the stage commands' output), then one line per stage with its folder."""
    from designclip.cli.printers import print_captions, print_release, print_render, print_tables, print_train
    from designclip.cli.search import print_embed, print_evaluation, print_index

    root, results, size = summary["data_root"], summary["results"], f"px{summary['profile']['render_size']}"
    print(summary["profile_line"])
    printers = {"ingest": lambda r: print_tables(root), "render": lambda r: print_render(r, root, size),
                "caption": lambda r: print_captions(r, root, size), "release": lambda r: print_release(r, root),
                "train": print_train, "index": lambda r: (print_embed(r["embed"], root), print_index(r["index"])),
                "evaluate": print_evaluation}
    for stage in STAGES:
        if stage in results:
            printers[stage](results[stage])
        if stage == "caption" and "deeppatent" in results:  # the rebuild runs after the data stages
            from designclip.cli.deeppatent import print_deeppatent

            print()
            print_deeppatent(results["deeppatent"])
    print(f"\nStages (release {summary['release']}, run {summary['run']}):")
    for stage, info in summary["stages"].items():
        if info["status"] == "done":
            print(f"  {stage:9s} {info['recomputed']:4d} computed, {info['skipped']:4d} already done  {info['where']}")
        else:
            print(f"  {stage:9s} {info['status']}: {info.get('error') or info.get('reason')}")
    if summary.get("disk"):
        from designclip.pipeline.dag.status_table import disk_line

        print(f"\nOn disk under {root}: {disk_line(summary['disk'])}")


def _pipeline_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.start is None or args.end is None:
        raise ValueError("give --start and --end (the grant dates of the weeks to run)")
    return {"start": args.start, "end": args.end, "data_root": args.data_root, "until": args.until or "evaluate",
            "from_stage": args.from_stage or "ingest", "source": args.source, "base_url": args.base_url,
            "archives": args.archive, "max_downloads": args.max_downloads, "keep_raw": args.keep_raw,
            "download_limit": args.download_limit,
            "release": args.release,
            "run": args.run, "profile": _profile(args),
            "release_options": {"exclude_patents": args.exclude_patents, "drop_excluded": args.drop_excluded,
                                "include_fallbacks": args.include_fallbacks},
            "deeppatent_lists": str(Path(args.deeppatent).resolve()) if args.deeppatent else None,
            "deeppatent_name": args.deeppatent_name}


def _run_pipeline(kwargs: dict[str, Any]) -> int:
    from designclip.flows.pipeline import PipelineFailed, pipeline_flow

    try:
        summary = pipeline_flow(**kwargs)
    except PipelineFailed as exc:
        print_pipeline(exc.summary)
        print(f"\n{exc}", file=sys.stderr)
        return 1
    print_pipeline(summary)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return _run_pipeline(_pipeline_kwargs(args))


def flow_run_parameters(flow_run_id: str) -> tuple[str, dict[str, Any]]:
    """(flow name, parameters) of a flow run, read from the Prefect server (or the embedded one)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    with get_client(sync_client=True) as client:
        try:
            flow_run = client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            where = PREFECT_API_URL.value() or "the embedded Prefect server (this machine's ~/.prefect database)"
            raise LookupError(f"no flow run {flow_run_id} on {where}: check the id (`prefect flow-run ls` lists "
                              "recent ones), or rerun by range with --failed --start ... --end ...") from None
        name = client.read_flow(flow_run.flow_id).name
    return name, dict(flow_run.parameters)


def stage_flows() -> dict[str, Any]:
    """Flow name -> flow function, for rerunning a flow run by its id."""
    from designclip.flows.caption import caption_flow
    from designclip.flows.embed import embed_flow
    from designclip.flows.evaluate import evaluate_flow
    from designclip.flows.index import index_flow
    from designclip.flows.ingest import ingest_flow
    from designclip.flows.pipeline import pipeline_flow
    from designclip.flows.release import release_flow
    from designclip.flows.render import render_flow
    from designclip.flows.train import train_flow

    return {f.name: f for f in (pipeline_flow, ingest_flow, render_flow, caption_flow, release_flow, train_flow,
                                embed_flow, index_flow, evaluate_flow)}


def rerun_flow_run(flow_run_id: str, from_stage: str | None = None, force: str | None = None,
                   until: str | None = None) -> tuple[str, Any]:
    """Run a recorded flow run again with its parameters (finished units are skipped); returns its result."""
    from designclip.flows.pipeline import force_stage
    from designclip.pipeline.dag.run_profile import profile_from_record

    name, params = flow_run_parameters(flow_run_id)
    flows = stage_flows()
    if name not in flows:
        raise ValueError(f"flow run {flow_run_id} is of flow {name!r}, not one of {', '.join(sorted(flows))}")
    if name != "designclip-pipeline":
        if from_stage or force or until:
            raise ValueError(f"--from, --until and --force apply to designclip-pipeline runs, not to a {name!r} run")
        return name, flows[name](**params)
    params["profile"] = profile_from_record(params.get("profile"))
    for key in ("start", "end"):
        params[key] = dt.date.fromisoformat(str(params[key]))
    if force:
        data_root = params.get("data_root", layout.DEFAULT_DATA_ROOT)
        _print_removed(force_stage(force, params["start"], params["end"], data_root, params.get("release"),
                                   params.get("run"), params["profile"]), force)
    params.update({k: v for k, v in (("from_stage", from_stage), ("until", until)) if v})
    return name, flows[name](**params)


def _print_removed(removed: list[str], stage: str) -> None:
    print(f"--force {stage}: removed {len(removed)} outputs of {stage} and later stages")
    for rel in removed:
        print(f"  {rel}")


def cmd_rerun(args: argparse.Namespace) -> int:
    from designclip.flows.pipeline import PipelineFailed, force_stage

    if args.flow_run_id:
        try:
            name, result = rerun_flow_run(args.flow_run_id, args.from_stage, args.force, args.until)
        except PipelineFailed as exc:
            print_pipeline(exc.summary)
            print(f"\n{exc}", file=sys.stderr)
            return 1
        if name == "designclip-pipeline":
            print_pipeline(result)
        else:
            print(f"flow run {args.flow_run_id} ({name}) ran again")
        return 0
    if not (args.failed or args.from_stage or args.force):
        raise ValueError("give a FLOW_RUN_ID, --failed, --from STAGE or --force STAGE")
    kwargs = _pipeline_kwargs(args)
    if args.force:
        removed = force_stage(args.force, kwargs["start"], kwargs["end"], args.data_root, args.release, args.run,
                              kwargs["profile"])
        _print_removed(removed, args.force)
    return _run_pipeline(kwargs)


def _run_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--start", type=parse_date, required=required, help="first grant date, e.g. 2021-01-01")
    parser.add_argument("--end", type=parse_date, required=required, help="last grant date, e.g. 2021-12-31")
    parser.add_argument("--until", choices=STAGES, help="last stage to run (default evaluate)")
    parser.add_argument("--from", dest="from_stage", choices=STAGES,
                        help="first stage to run (default ingest; earlier stages' outputs must be there)")
    parser.add_argument("--source", choices=("bdss", "odp"), default="bdss",
                        help="bdss: bulkdata.uspto.gov layout; odp: Open Data Portal API (needs USPTO_API_KEY)")
    parser.add_argument("--base-url", help="mirror to read from instead of the USPTO (http(s):// or file://)")
    parser.add_argument("--archive", nargs="+", metavar="FILE", help="ingest archives already on disk instead")
    add_download_options(parser)
    add_keep_raw(parser)
    parser.add_argument("--release", help="release version (default: the year, e.g. 2021, or 2021-2023)")
    parser.add_argument("--run", help="training run name (default RELEASE-MODEL)")
    parser.add_argument("--exclude-patents", nargs="+", metavar="FILE",
                        help="keep these patents (ids one per line, or DeepPatent list files) and their "
                             "near-duplicates out of train/val of the release")
    parser.add_argument("--drop-excluded", action="store_true", help="leave excluded patents out of the release")
    parser.add_argument("--include-fallbacks", action="store_true",
                        help="release whole-sheet fallbacks of multi-FIG. sheets too (left out by default)")
    parser.add_argument("--captioner", choices=("metadata", "llava", "vllm"),
                        help="caption backend (default: llava with a CUDA GPU, else metadata)")
    parser.add_argument("--caption-model", help="captioner hub id or folder (default llava-hf/llava-1.5-7b-hf)")
    parser.add_argument("--model", help="open_clip model to train (default: ViT-B-16 on GPU, designclip-tiny on CPU)")
    parser.add_argument("--pretrained", help="initial weights of --model (e.g. openai; needs a network)")
    parser.add_argument("--steps", type=int, help="training steps (default: 1 epoch on GPU, 40 on CPU)")
    parser.add_argument("--epochs", type=float, help="training epochs when --steps is not given")
    parser.add_argument("--batch-size", type=int, help="training batch size (default 64 on GPU, 16 on CPU)")
    parser.add_argument("--baseline", help="model evaluated beside the trained one (default: the untrained one)")
    _deeppatent_options(parser)


def _deeppatent_options(parser: argparse.ArgumentParser) -> None:
    """`--deeppatent [LISTS]`: rebuild DeepPatent from the run's weeks in the same DAG run, before release."""
    from designclip.pipeline.deeppatent.lists import packaged_lists

    parser.add_argument("--deeppatent", nargs="?", const=str(packaged_lists()), metavar="LISTS",
                        help="after the data stages, rebuild DeepPatent from the run's ingested (and rendered) weeks "
                             "as `designclip deeppatent build` does; LISTS: the lists folder (default: the real "
                             "lists shipped with designclip). DeepPatent's own range is 2018-01-01..2019-06-30 plus "
                             "one week of 2020 (2020-01-07) that the lists name; the training split covers "
                             "--start..--end")
    parser.add_argument("--deeppatent-name", default=layout.DEFAULT_DEEPPATENT_NAME, metavar="NAME",
                        help="the rebuild's folder: DATA_ROOT/deeppatent/NAME (default "
                             f"{layout.DEFAULT_DEEPPATENT_NAME})")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the run and rerun subcommands on the main parser."""
    run = sub.add_parser("run", help="the whole DAG on a date range: ingest ... evaluate, printing where outputs are")
    _run_options(run, required=True)
    run.set_defaults(func=cmd_run)

    rerun = sub.add_parser("rerun", help="redo what failed (finished work is skipped), from a stage, or forced")
    rerun.add_argument("flow_run_id", nargs="?", metavar="FLOW_RUN_ID", help=FLOW_RUN_HELP)
    rerun.add_argument("--failed", action="store_true",
                       help="rerun the range: only units without a done marker (failed or never run) are computed")
    rerun.add_argument("--force", choices=STAGES,
                       help="first remove the outputs of this stage and every later one (weeks of the range, the "
                            "release, the run; raw downloads are kept), then run")
    _run_options(rerun, required=False)
    rerun.set_defaults(func=cmd_rerun)
