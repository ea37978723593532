"""`designclip embed | index | search | serve | evaluate`: the DAG's last stages, on a release and a model."""

from __future__ import annotations

import argparse
from pathlib import Path

MODEL_HELP = ("a run name (models/RUN under the data root), a model folder, an open_clip name such as ViT-B-32 "
              "(with --pretrained) or hf-hub:org/name")


def _spec(model: str, pretrained: str | None):
    from designclip.pipeline.embed.encoder import EncoderSpec

    return EncoderSpec(model, pretrained)


def print_embed(summary: dict, data_root: str) -> None:
    from designclip.storage import layout
    from designclip.storage.folder import DataFolder

    where = DataFolder(data_root).path(layout.embed_dir(summary["release"], summary["model_tag"]))
    print(f"\nEmbedded {summary['samples']} views of release {summary['release']} with {summary['model_tag']} "
          f"({summary['failures']} unreadable, {summary['skipped']} of {summary['shards']} shards already done)")
    print(f"  {where}  (per shard: .image.npy, .text.npy, row-aligned .parquet, .stats.json)")


def cmd_embed(args: argparse.Namespace) -> int:
    from designclip.flows.embed import embed_flow

    summary = embed_flow(release=args.release, model=args.model, pretrained=args.pretrained,
                         data_root=args.data_root, splits=tuple(args.splits.split(",")), batch_size=args.batch_size,
                         fp16=args.fp16)
    print_embed(summary, args.data_root)
    return 0


def print_index(summary: dict) -> None:
    for kind, card in summary["indexes"].items():
        state = "unchanged" if card.get("skipped") else "built"
        print(f"\nIndex {kind} {state}: {card['factory']} over {card['n']} vectors ({card['reason']})")
        tuned = f"{card['tuned_param']}={card['tuned_value']}, " if card.get("tuned_param") else ""
        print(f"  {tuned}recall@10 {card['recall_at_10']:.3f} vs exact, {card['latency_ms']:.2f} ms/query")
        print(f"  {card['path']}  (index.faiss: faiss.read_index; ids.parquet: id -> key; card.md)")


def print_append(summary: dict) -> None:
    for kind, card in summary["indexes"].items():
        held = ", ".join(r["release"] for r in card["releases"])
        if card.get("skipped"):
            print(f"\nGrown index {summary['into']} ({kind}) already holds release {summary['release']}: nothing "
                  f"appended ({card['n']} vectors of {held})")
        else:
            added = card["releases"][-1]
            print(f"\nGrown index {summary['into']} ({kind}): release {summary['release']} appended, "
                  f"{added['n']} vectors (ids {added['first_id']}..{added['first_id'] + added['n'] - 1}); "
                  f"{card['factory']} over {card['n']} vectors of {held}")
        tuned = f"{card['tuned_param']}={card['tuned_value']}, " if card.get("tuned_param") else ""
        print(f"  {tuned}recall@10 {card['recall_at_10']:.3f} vs exact over all of them, "
              f"{card['latency_ms']:.2f} ms/query")
        if card.get("rebuild_advice"):
            print(f"  note: {card['rebuild_advice']}")
        print(f"  {card['path']}  (card.json names the generation: {card['generation']}/index.faiss, keys.parquet)")
    if summary["indexes"]:
        print(f"  search it: designclip search --index {summary['into']} --model {summary['model_tag']} \"QUERY\"")


def cmd_index(args: argparse.Namespace) -> int:
    from designclip.flows.index import index_append_flow, index_flow
    from designclip.pipeline.index.append import DEFAULT_NAME

    if args.append:
        summary = index_append_flow(release=args.release, model=args.model, into=args.into or DEFAULT_NAME,
                                    pretrained=args.pretrained, data_root=args.data_root,
                                    kinds=tuple(args.kinds.split(",")), memory_budget_gb=args.memory_gb,
                                    target_recall=args.target_recall, latency_ms=args.latency_ms)
        print_append(summary)
        return 0
    if args.into:
        raise ValueError("--into names the grown index that --append adds to: add --append")
    summary = index_flow(release=args.release, model=args.model, pretrained=args.pretrained,
                         data_root=args.data_root, kinds=tuple(args.kinds.split(",")),
                         memory_budget_gb=args.memory_gb, target_recall=args.target_recall,
                         latency_ms=args.latency_ms)
    print_index(summary)
    return 0


def print_hits(hits: list, query: str) -> None:
    print(f"\n{len(hits)} designs for {query}:")
    for hit in hits:
        print(f"  {hit.rank:3d}. {hit.score:.3f}  {hit.patent_id}  FIG. {hit.fig} ({hit.view})  "
              f"class {hit.uspc_class or '?'}  {hit.title}")


def cmd_search(args: argparse.Namespace) -> int:
    from designclip.cli.defaults import fill_release_and_model
    from designclip.pipeline.index.grown_search import open_any_searcher

    if bool(args.query) == bool(args.image):
        raise ValueError("give a text query or --image FILE (one of them)")
    fill_release_and_model(args, "search")
    searcher = open_any_searcher(args.data_root, args.release, args.index, args.model, args.pretrained)
    if args.image:
        hits = searcher.search_image(Path(args.image).read_bytes(), k=args.k, per_patent=not args.views)
        label = f"drawing {args.image}"
    else:
        hits = searcher.search_text(args.query, k=args.k, per_patent=not args.views)
        label = repr(args.query)
    print_hits(hits, label)
    if args.out:
        Path(args.out).write_bytes(searcher.hits_sheet(hits, f"{label} — {args.release or '@' + args.index}"))
        print(f"  contact sheet: {args.out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from designclip.cli.defaults import fill_release_and_model
    from designclip.cli.serve import serve

    fill_release_and_model(args, "serve")
    serve(args.data_root, args.release, args.model, pretrained=args.pretrained, host=args.host, port=args.port,
          index=args.index)
    return 0


def print_evaluation(summary: dict) -> None:
    rows = summary["models"]
    metrics = [k for k in rows[0] if k not in ("model", "model_tag", "report_dir", "skipped")]
    print(f"\nEvaluation on release {summary['release']} (percent; first row = ours):")
    print("  " + " | ".join(["model", *metrics]))
    for row in rows:
        print("  " + " | ".join([row["model_tag"], *(str(row[m]) for m in metrics)]))
    for row in rows:
        state = "unchanged" if row["skipped"] else "written"
        print(f"  report {state}: {row['report_dir']}  (report.md, report.json, recall.png, confusion_*.png, "
              "dira_result.npy)")
    if summary.get("comparison"):
        print(f"  comparison: {summary['comparison']['markdown']}  {summary['comparison']['plot']}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from designclip.cli.defaults import fill_release_and_model
    from designclip.flows.evaluate import evaluate_flow

    if args.deeppatent_lists and not args.release:  # the benchmark alone (a model trained from a rebuild folder)
        return _evaluate_benchmark_only(args)
    fill_release_and_model(args, "evaluate")
    models = [args.model, *(args.baseline or [])]
    pretrained = [args.pretrained, *(args.baseline_pretrained or [None] * len(args.baseline or []))]
    lists = None
    if args.deeppatent_lists:
        if args.deeppatent_queries or args.deeppatent_db:
            raise ValueError("give either --deeppatent-lists DIR (the benchmark's test and val lists) or "
                             "--deeppatent-queries/--deeppatent-db (one pair of lists), not both")
        if not args.deeppatent_images:
            raise ValueError("--deeppatent-lists needs --deeppatent-images DIR (the folder the lists' paths start "
                             "in: DIR/images of `designclip deeppatent build`)")
        lists = {"lists_dir": args.deeppatent_lists, "image_root": args.deeppatent_images}
    elif args.deeppatent_queries or args.deeppatent_db or args.deeppatent_images:
        if not (args.deeppatent_queries and args.deeppatent_db and args.deeppatent_images):
            raise ValueError("the DeepPatent protocol on the real data needs all of --deeppatent-queries, "
                             "--deeppatent-db and --deeppatent-images")
        lists = {"query_list": args.deeppatent_queries, "db_list": args.deeppatent_db,
                 "image_root": args.deeppatent_images}
    summary = evaluate_flow(release=args.release, models=models, data_root=args.data_root, pretrained=pretrained,
                            deeppatent_lists=lists, seed=args.seed, pairs_5k=args.patents_5k,
                            allow_deeppatent_overlap=args.allow_deeppatent_overlap,
                            skip_missing=args.skip_missing_images)
    print_evaluation(summary)
    return 0


def _evaluate_benchmark_only(args: argparse.Namespace) -> int:
    """`--deeppatent-lists` without `--release`: every model given, scored on the benchmark's lists and images."""
    from designclip.pipeline.evaluate.benchmark_only import evaluate_benchmark_only

    if not args.model or not args.deeppatent_images:
        raise ValueError("the DeepPatent benchmark without a release needs --model RUN_OR_MODEL and "
                         "--deeppatent-images DIR (DIR/images of `designclip deeppatent build`)")
    for model, pretrained in zip([args.model, *(args.baseline or [])],
                                 [args.pretrained, *(args.baseline_pretrained or [None] * len(args.baseline or []))],
                                 strict=True):
        report = evaluate_benchmark_only(args.data_root, model, args.deeppatent_lists, args.deeppatent_images,
                                         pretrained=pretrained, allow_overlap=args.allow_deeppatent_overlap,
                                         skip_missing=args.skip_missing_images)
        for split, part in report["deeppatent_benchmark"]["splits"].items():
            print(f"{report['model']['tag']} on DeepPatent {split}: mAP {part.get('mAP', 0):.4f} (official), "
                  f"{part.get('mAP_pml', 0):.4f} (PML), P@1 {part.get('p_at_1') or 0:.4f}")
            if part.get("missing_images"):
                print(f"  {part['missing_images']} of {part['listed_images']} listed images missing (skipped)")
        print(f"  report: {report['report_dir']}/report.md (published rows beside it)")
    return 0


def _model_options(parser: argparse.ArgumentParser, required: bool = True, grown: bool = False) -> None:
    """--release/--model; `required=False`: both default to the only release and model the data root holds."""
    if not required:
        parser.add_argument("--release", help="release version (releases/VERSION under the data root); default: "
                                              "the only one there is")
        if grown:
            parser.add_argument("--index", metavar="NAME", help="instead of --release: the index grown over "
                                                                "several releases by `designclip index --append "
                                                                "--into NAME`")
    else:
        parser.add_argument("--release", required=True, help="release version (releases/VERSION under the data root)")
    parser.add_argument("--model", required=required, help=MODEL_HELP + ("" if required else "; default: the only "
                                                                          "model there is"))
    parser.add_argument("--pretrained", help="open_clip weights tag for --model (e.g. openai; needs a network)")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the embed/index/search/serve/evaluate subcommands on the main parser."""
    embed = sub.add_parser("embed", help="image + caption embeddings of every released view (per shard, resumable)")
    _model_options(embed)
    embed.add_argument("--splits", default="train,val,test", help="release splits to embed (default all three)")
    embed.add_argument("--batch-size", type=int, default=64)
    embed.add_argument("--fp16", action="store_true", help="store vectors as float16 (half the disk)")
    embed.set_defaults(func=cmd_embed)

    index = sub.add_parser("index", help="FAISS index of the embeddings, chosen from size and memory budget")
    _model_options(index)
    index.add_argument("--kinds", default="image,text", help="which vectors to index (default image,text)")
    index.add_argument("--memory-gb", type=float, default=8.0, help="memory the index may take (default 8)")
    index.add_argument("--target-recall", type=float, default=0.95, help="recall@10 vs exact to tune for")
    index.add_argument("--latency-ms", type=float, default=10.0, help="per-query latency target in ms")
    index.add_argument("--append", action="store_true",
                       help="add the release's vectors to an index grown over several releases (same model) "
                            "instead of building the release's own index; the first release appended starts it")
    index.add_argument("--into", metavar="NAME", help="the grown index --append adds to (indexes/@NAME/; "
                                                      "default all); search it with `designclip search --index NAME`")
    index.set_defaults(func=cmd_index)

    search = sub.add_parser("search", help="search designs by text or by drawing")
    search.add_argument("query", nargs="?", help="text, e.g. 'a chair with curved legs'")
    _model_options(search, required=False, grown=True)
    search.add_argument("--image", help="a drawing (PNG/JPEG/TIFF) to search with instead of text")
    search.add_argument("-k", type=int, default=10, help="results (default 10)")
    search.add_argument("--views", action="store_true", help="rank single views instead of one hit per patent")
    search.add_argument("--out", help="write a contact sheet of the hits (PNG)")
    search.set_defaults(func=cmd_search)

    serve = sub.add_parser("serve", help="a local search page (search box + drawing upload)")
    _model_options(serve, required=False, grown=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.set_defaults(func=cmd_serve)

    evaluate = sub.add_parser("evaluate", help="retrieval, classification and DeepPatent metrics; report + plots")
    _model_options(evaluate, required=False)
    evaluate.add_argument("--baseline", action="append",
                          help="a model to evaluate beside --model (repeatable), e.g. designclip-tiny (untrained), "
                               "ViT-B-32 --baseline-pretrained openai, hf-hub:patentclip/PatentCLIP_Vit_B")
    evaluate.add_argument("--baseline-pretrained", action="append", help="--pretrained of each --baseline")
    evaluate.add_argument("--deeppatent-lists", metavar="DIR",
                          help="DeepPatent benchmark lists: test_query_patent.txt + test_db_patent.txt (and "
                               "val_query_patent.txt + val_db_patent.txt when there), e.g. the lists/ of `designclip "
                               "deeppatent build`; scored with both mAPs, P@1 and top-k beside the published rows")
    evaluate.add_argument("--deeppatent-queries", help="DeepPatent test_query_patent.txt (real dataset)")
    evaluate.add_argument("--deeppatent-db", help="DeepPatent test_db_patent.txt")
    evaluate.add_argument("--deeppatent-images", help="folder with the DeepPatent images (the lists' paths start here)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the 5k patent sample, splits and probes")
    evaluate.add_argument("--patents-5k", type=int, default=5000,
                          help="test patents in DesignCLIP's one-view-per-patent retrieval protocol (default 5000)")
    evaluate.add_argument("--allow-deeppatent-overlap", action="store_true",
                          help="score DeepPatent even when the model's training release holds some of its patents "
                               "(printed loudly, recorded as deeppatent.overlap_patents)")
    evaluate.add_argument("--skip-missing-images", action="store_true",
                          help="score the DeepPatent list lines whose image is there and leave the rest out "
                               "(counted per split as missing_images in the report; a rebuild's missing.json says "
                               "why); default: a missing image is an error")
    evaluate.set_defaults(func=cmd_evaluate)
