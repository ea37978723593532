"""A caption process of a multi-GPU run: `accelerate launch -m designclip.cli.caption_worker ...` (whole shards)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from designclip.pipeline.caption.driver import CAPTION, add_spec_arguments, spec_from_args, unload_captioners
from designclip.pipeline.common.stage import Scope
from designclip.storage.folder import DataFolder


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="designclip.cli.caption_worker", description=__doc__)
    p.add_argument("--data-root", required=True)
    p.add_argument("--weeks-from", type=dt.date.fromisoformat, required=True, help="first grant date")
    p.add_argument("--weeks-to", type=dt.date.fromisoformat, required=True, help="last grant date")
    add_spec_arguments(p)  # the caption options, as CaptionerSpec declares them (worker_argv writes them)
    p.set_defaults(backend="llava")  # a worker by hand runs on GPUs
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

    from designclip.tasks.progress import CountProgress  # log lines only: no Prefect run here

    args = parse_args(argv)
    state = PartialState(cpu=not torch.cuda.is_available())  # CPU processes (torchrun) split shards over gloo
    log = _logger(state.process_index, state.num_processes)
    folder = DataFolder(args.data_root)
    spec = spec_from_args(args, device=str(state.device) if state.device.type == "cuda" else None)
    shards = CAPTION.units(folder, Scope(args.weeks_from, args.weeks_to, "", "", spec.profile), spec)
    pending = [r for r in shards if not CAPTION.is_done(folder, r, spec)]
    state.wait_for_everyone()  # every process lists the pending shards before any starts on them
    with state.split_between_processes(pending) as mine:
        mine = list(mine)
    log.info("%d of %d shards pending, %d for this process", len(pending), len(shards), len(mine))
    try:
        for ref in mine:
            result = CAPTION.run(folder, ref, spec, CountProgress(f"caption {ref.name}", 0, log, unit="views"),
                                 log=log)
            log.info("%s: %d captions, %d failures", ref.name, result.stats["captioned"], result.stats["failures"])
    finally:
        unload_captioners()
    state.wait_for_everyone()
    return 0


if __name__ == "__main__":
    sys.exit(main())
