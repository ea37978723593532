"""A caption process of a multi-GPU run: `accelerate launch -m designclip.cli.caption_worker ...` (whole shards)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from designclip.storage.captions import rendered_shards, shard_captions_done
from designclip.storage.folder import DataFolder


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="designclip.cli.caption_worker", description=__doc__)
    p.add_argument("--data-root", required=True)
    p.add_argument("--profile", default="px512")
    p.add_argument("--weeks-from", type=dt.date.fromisoformat, required=True, help="first grant date")
    p.add_argument("--weeks-to", type=dt.date.fromisoformat, required=True, help="last grant date")
    p.add_argument("--captioner", default="llava")
    p.add_argument("--model")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-new-tokens", type=int, default=77)
    p.add_argument("--loader-workers", type=int, default=2)
    return p.parse_args(argv)


def _logger(index: int, count: int) -> logging.Logger:
    """Lines prefixed with the process, so interleaved output of several GPUs stays readable."""
    log = logging.getLogger(f"designclip.caption.worker{index}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s [caption {index + 1}/{count}] %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def main(argv: list[str] | None = None) -> int:
    import torch
    from accelerate import PartialState

    from designclip.tasks.caption import (
        CaptionerSpec,
        caption_shard_file,
        load_captioner,
        prepare_set,
        unload_captioners,
    )

    args = parse_args(argv)
    state = PartialState(cpu=not torch.cuda.is_available())  # CPU processes (torchrun) split shards over gloo
    log = _logger(state.process_index, state.num_processes)
    folder = DataFolder(args.data_root)
    device = str(state.device) if state.device.type == "cuda" else None
    spec = CaptionerSpec(args.captioner, args.model, args.batch_size, args.max_new_tokens, device=device,
                         loader_workers=args.loader_workers)
    captioner = load_captioner(spec)
    caption_set = prepare_set(args.data_root, args.profile, captioner)
    shards = rendered_shards(folder, args.profile, args.weeks_from, args.weeks_to)
    pending = [r for r in shards if shard_captions_done(folder, args.profile, caption_set, r) is None]
    state.wait_for_everyone()  # every process lists the pending shards before any starts on them
    with state.split_between_processes(pending) as mine:
        mine = list(mine)
    log.info("%d of %d shards pending, %d for this process", len(pending), len(shards), len(mine))
    try:
        for ref in mine:
            stats = caption_shard_file(args.data_root, args.profile, ref, captioner, caption_set, logger=log)
            log.info("%s: %d captions, %d failures", ref.name, stats["captioned"], stats["failures"])
    finally:
        unload_captioners()
    state.wait_for_everyone()
    return 0


if __name__ == "__main__":
    sys.exit(main())
