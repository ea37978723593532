"""Training throughput: our loop (release shards -> loader workers -> DesignCLIP step) vs plain open_clip on tensors.

The raw baseline is the same open_clip model doing forward + CLIP loss + backward + AdamW on synthetic tensors
already in memory, in the same run: the ratio ours/raw is what the data path (tar reading, PNG decode,
augmentation, tokenising, batching, host->device copies) and the loop cost. Goal on a GPU: >= 0.9.
A second row runs every DesignCLIP term (class head, class prompts through the text tower, multi-view): its
extra compute is reported, not part of the data-path ratio.

Usage: python benchmarks/caption.py is the caption twin; here:
  python benchmarks/train.py --model ViT-B-16 --image-size 224 --batch-size 128 --steps 60   (GPU)
  python benchmarks/train.py --model tiny --batch-size 32 --steps 20                          (CPU smoke)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from designclip.pipeline.ingest.sample import ingest_sample_weeks
from designclip.pipeline.train.loop import LoopSettings, TrainOptions, mixed_precision, train
from designclip.pipeline.train.model import LossWeights, build_clip
from designclip.pipeline.train.model_configs import tiny_model_config
from designclip.storage.train_runs import TrainRun

WEEKS = [dt.date(2021, 3, 23), dt.date(2021, 4, 6), dt.date(2021, 4, 13), dt.date(2021, 5, 4),
         dt.date(2021, 6, 29), dt.date(2021, 8, 31), dt.date(2021, 9, 14), dt.date(2021, 12, 21),
         dt.date(2021, 12, 28)]


def build_release(root: Path) -> str:
    """A real release of the cheap sample weeks (one FIG. per sheet): 58 views, built in seconds."""
    from designclip.pipeline.release.driver import build_release as build
    from designclip.pipeline.render.driver import RENDER
    from designclip.storage.folder import DataFolder

    data = root / "data"
    ingest_sample_weeks(data, WEEKS, root)
    for week in WEEKS:
        RENDER.run(DataFolder(data), week)
    build("bench", str(data), ratios="100/0/0", shard_samples=16)
    return str(data)


def ours(data: str, options: TrainOptions, warmup: int, steps: int, workers: int, name: str) -> float:
    """Steady-state samples/s of the real loop between step `warmup` and the end (from metrics.jsonl)."""
    run = TrainRun(data, name)
    opts = dataclasses.replace(options, steps=warmup + steps)
    train(str(Path(data) / "releases" / "bench"), run, opts,
          LoopSettings(checkpoint_every=10**9, log_every=warmup, workers=workers))
    rows = run.read_metrics()
    a, b = next(r for r in rows if r["step"] == warmup), rows[-1]
    return (b["step"] - a["step"]) * options.batch_size / (b["elapsed_s"] - a["elapsed_s"])


def raw(options: TrainOptions, warmup: int, steps: int, image_size: int) -> float:
    """Plain open_clip: forward, ClipLoss, backward, AdamW on tensors already on the device."""
    import open_clip

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model, _, _, tokenizer = build_clip(options.model, options.pretrained, options.model_config)
    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=options.lr)
    loss_fn = open_clip.ClipLoss()
    images = torch.randn(options.batch_size, 3, image_size, image_size, device=device)
    texts = tokenizer(["a patent drawing of a chair"] * options.batch_size).to(device)
    dtype = torch.bfloat16 if mixed_precision(options.precision) == "bf16" else None
    for i in range(warmup + steps):
        if i == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            img, txt, scale = model(images, texts)[:3]
            loss = loss_fn(img, txt, scale)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * options.batch_size / (time.perf_counter() - started)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ViT-B-16", help="open_clip name, or 'tiny' (the CPU main job's config)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=60, help="timed steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--workers", type=int, default=8, help="DataLoader processes of our loop")
    args = p.parse_args()
    tiny = args.model == "tiny"
    base = TrainOptions(model="designclip-tiny" if tiny else args.model, model_config=tiny_model_config() if tiny
                        else None, batch_size=args.batch_size, warmup_steps=1, lr=1e-4, views_per_patent=0)
    size = 64 if tiny else args.image_size
    clip_only = dataclasses.replace(base, weights=LossWeights(clip=1.0, cls=0.0, prompt=0.0, view=0.0))
    full = dataclasses.replace(base, views_per_patent=2)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or 'x86'})"
    with tempfile.TemporaryDirectory(prefix="designclip-bench-train-") as tmp:
        data = build_release(Path(tmp))
        r = raw(clip_only, args.warmup, args.steps, size)
        o = ours(data, clip_only, args.warmup, args.steps, args.workers, "clip-only")
        f = ours(data, full, args.warmup, args.steps, args.workers, "all-terms")
    print(json.dumps({"model": base.model, "image_size": size, "batch_size": args.batch_size, "device": device,
                      "precision": mixed_precision(base.precision), "timed_steps": args.steps}, indent=None))
    print("| run | samples/s | vs raw |\n|---|---|---|")
    print(f"| raw open_clip on tensors (CLIP loss) | {r:.1f} | 1.00 |")
    print(f"| ours, CLIP term only (data path + loop) | {o:.1f} | {o / r:.2f} |")
    print(f"| ours, all DesignCLIP terms | {f:.1f} | {f / r:.2f} |")
    goal = "met" if o / r >= 0.9 else "NOT met"
    print(f"data-path ratio {o / r:.2f} (goal >= 0.9 on a GPU: {goal})" + (" — CPU run, not the goal run" if
                                                                         not torch.cuda.is_available() else ""))


if __name__ == "__main__":
    main()
