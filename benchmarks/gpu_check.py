"""One GPU check with nothing to download: captioning, training, embedding and FAISS speed on one H100/H200.

Steps (each timed; one table printed, the same rows written as JSON):
  caption  LLaVA-1.5-7B shapes (CLIP ViT-L/14-336 + Llama-2-7B) with random bf16 weights built in place; the real
           llava captioner at batch 1 vs its tuned batch, a fixed number of new tokens (goal >= 15 images/s, >= 4x).
  train    open_clip ViT-B-16: the real training loop on release shards vs raw open_clip on tensors (goal >= 0.9x);
           both from benchmarks/train.py.
  embed    the exported model through the embed stage's loader: PNG decode + eval transform + encode, images/s.
  faiss    the index stage's IVF-PQ build with k-means on the GPU (only when faiss sees a GPU).
  higuchi  Higuchi's recipe (`--preset higuchi`): timm SwinV2-B 384 px, gray input, the seed's head, focal ArcFace,
           Adam at two LRs, bf16 autocast: training images/s at batch 64 on random weights and sheets, and what 25
           epochs of a rebuilt DeepPatent training split (~254k sheets) would take at that speed.
`--cpu` runs the same steps with the tiny models in under 2 minutes (tests/test_gpu_check.py runs it).

Needs a CUDA PyTorch (torch, torchvision, pillow), transformers and accelerate, plus these wheels (carry them and
`pip install --no-index --find-links WHEELS open_clip_torch pyarrow`), about 47 MB together:
  open_clip_torch 3.x (1.5 MB), timm (2.8 MB), ftfy (0.05 MB), wcwidth (0.8 MB): pure Python;
  pyarrow (~42 MB, binary): the training loader reads the release manifest with it.
faiss-gpu is optional (its row is skipped without it). Prefect is never imported: the check writes its own release.

Usage: python benchmarks/gpu_check.py [--cpu] [--json gpu_check.json] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from designclip.pipeline.train.data import decode_image, tar_samples
from designclip.pipeline.train.loop import TrainOptions
from designclip.pipeline.train.model import LossWeights
from designclip.pipeline.train.model_configs import tiny_model_config
from PIL import Image, ImageDraw
from train import ours, raw  # benchmarks/train.py: this script's folder comes first on sys.path

GOALS = {"caption_rate": 15.0, "caption_speedup": 4.0, "train_ratio": 0.9}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What one mode runs: the GPU goal run, or tiny models on the CPU."""

    llava: str  # "7b" | "tiny"
    new_tokens: int
    bs1_images: int
    tuned_images: int
    clip_model: str
    image_size: int
    train_batch: int
    warmup: int
    steps: int
    patents: int
    views: int  # per patent
    shard_samples: int
    faiss_vectors: int
    faiss_dim: int


GPU = Sizes("7b", 64, 16, 512, "ViT-B-16", 224, 256, 10, 40, 1024, 4, 128, 1_000_000, 512)
CPU = Sizes("tiny", 8, 4, 16, "designclip-tiny", 64, 8, 2, 4, 16, 4, 16, 20_000, 32)
DEEPPATENT_TRAIN_SHEETS = 254_000  # ~350k DeepPatent sheets minus the 96,782 of its val/test lists
HIGUCHI_TINY = {"embed_dim": 16, "depths": [1, 1], "num_heads": [1, 1], "img_size": 64, "window_size": 4}


# ------------------------------------------------------------------------------------------------- inputs

def drawing(seed: int, size: int = 512) -> bytes:
    """A gray line drawing like a rendered view (outlines, ellipses, hatching on white), as PNG bytes."""
    rng = random.Random(seed)
    im = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(im)
    for _ in range(rng.randint(6, 14)):
        box = sorted(rng.randrange(size) for _ in range(2)), sorted(rng.randrange(size) for _ in range(2))
        (x0, x1), (y0, y1) = box
        if rng.random() < 0.5:
            d.ellipse((x0, y0, x1 + 2, y1 + 2), outline=0, width=rng.choice((1, 2)))
        else:
            d.polygon([(rng.randrange(size), rng.randrange(size)) for _ in range(rng.randint(3, 7))], outline=0)
    for x in range(0, size, rng.randint(6, 16)):  # hatching in one band, as section views have
        d.line((x, size // 2, x + 30, size // 2 + 60), fill=0)
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def sample_meta(patent: int, view: int, split: str = "train") -> dict[str, Any]:
    """The sample json fields the loader and the caption prompt read."""
    views = ("perspective", "front", "top", "side")
    title = ("Chair", "Bottle", "Lamp", "Phone case", "Vehicle wheel", "Spoon")[patent % 6]
    return {"key": f"USD9{patent:06d}_f{view + 1}", "patent_id": f"USD9{patent:06d}", "cls": patent % 33,
            "locarno_class": f"{patent % 32 + 1:02d}", "split": split, "title": title,
            "view": views[view % 4], "view_description": f"a {views[view % 4]} view of the {title.lower()}"}


def write_release(data: Path, sizes: Sizes, pngs: list[bytes]) -> Path:
    """releases/bench/ with the files the training loader reads: train shards, sizes.json, classes.json, manifest."""
    import tarfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = data / "releases" / "bench"
    (root / "train").mkdir(parents=True)
    samples = [sample_meta(p, v) for p in range(sizes.patents) for v in range(sizes.views)]
    sizes_json = {}
    for n, start in enumerate(range(0, len(samples), sizes.shard_samples)):
        name = f"{n:05d}.tar"
        part = samples[start:start + sizes.shard_samples]
        with tarfile.open(root / "train" / name, "w") as tar:
            for i, meta in enumerate(part, start):
                for ext, body in (("png", pngs[i % len(pngs)]), ("json", json.dumps(meta).encode()),
                                  ("cls", str(meta["cls"]).encode()), ("txt", f"{meta['view_description']}.".encode())):
                    info = tarfile.TarInfo(f"{meta['key']}.{ext}")
                    info.size = len(body)
                    tar.addfile(info, io.BytesIO(body))
        sizes_json[name] = len(part)
    (root / "train" / "sizes.json").write_text(json.dumps(sizes_json))
    (root / "classes.json").write_text(json.dumps({"locarno": {f"{i:02d}": f"class {i}" for i in range(1, 33)}}))
    pq.write_table(pa.table({"split": ["train"] * len(samples), "patent_id": [m["patent_id"] for m in samples]}),
                   root / "manifest.parquet")
    return root


# ------------------------------------------------------------------------------------------------- steps

def llava_7b(device: str) -> tuple[Any, Any]:
    """llava-hf/llava-1.5-7b-hf's shapes with random weights, created on `device` in bf16 (nothing downloaded)."""
    from designclip.pipeline.caption.tiny_llava import random_llava_7b

    return random_llava_7b(device)


def llava_tiny(device: str) -> tuple[Any, Any]:
    """The tests' tiny random LLaVA (pipeline/caption/tiny_llava.py), built in memory."""
    from designclip.pipeline.caption.tiny_llava import build_processor, build_tokenizer, tiny_config
    from transformers import LlavaForConditionalGeneration

    tokenizer = build_tokenizer()
    config = tiny_config(tokenizer)
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).to(device).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, build_processor(tokenizer, config.vision_config.image_size)


def check_caption(sizes: Sizes, device: str, pngs: list[bytes]) -> list[dict[str, Any]]:
    """Images/s of the llava captioner at batch 1 and at its tuned batch (CUDA: sized from free memory)."""
    from designclip.pipeline.caption.captioner import CaptionRequest, GenerationSettings
    from designclip.pipeline.caption.llava import LlavaCaptioner

    model, processor = (llava_7b if sizes.llava == "7b" else llava_tiny)(device)
    generation = GenerationSettings(max_new_tokens=sizes.new_tokens, min_new_tokens=sizes.new_tokens)
    requests = [CaptionRequest(f"view{i}", pngs[i % len(pngs)], sample_meta(i // 4, i % 4))
                for i in range(max(sizes.bs1_images, sizes.tuned_images))]

    def run(batch_size: int | None, count: int) -> tuple[float, int, int]:
        captioner = LlavaCaptioner.from_parts(model, processor, f"random-{sizes.llava}", batch_size=batch_size,
                                              generation=generation, device=device,
                                              loader_workers=4 if device == "cuda" else 0)
        list(captioner.caption(requests[:min(count, captioner.batch_size)]))  # warm-up: kernels, allocator
        _sync(device)
        started = time.perf_counter()
        results = list(captioner.caption(requests[:count]))
        _sync(device)
        ok = sum(r.error is None and r.output_tokens == sizes.new_tokens for r in results)
        return count / (time.perf_counter() - started), captioner.batch_size, ok

    one, _, ok1 = run(1, sizes.bs1_images)
    tuned, batch, ok = run(None if device == "cuda" else 8, sizes.tuned_images)
    return [_row("caption.batch1", "batch 1", one, "images/s", images=sizes.bs1_images, captions_ok=ok1),
            _row("caption.tuned", f"tuned batch {batch}", tuned, "images/s", goal=GOALS["caption_rate"],
                 images=sizes.tuned_images, captions_ok=ok, new_tokens=sizes.new_tokens),
            _row("caption.speedup", "tuned / batch 1", tuned / one, "x", goal=GOALS["caption_speedup"])]


def check_train(sizes: Sizes, data: Path, workers: int) -> list[dict[str, Any]]:
    """Samples/s of the real loop (CLIP term, data path included) against raw open_clip on tensors."""
    tiny = sizes.clip_model == "designclip-tiny"
    options = TrainOptions(model=sizes.clip_model, model_config=tiny_model_config() if tiny else None,
                           batch_size=sizes.train_batch, warmup_steps=1, lr=1e-4, views_per_patent=0,
                           weights=LossWeights(clip=1.0, cls=0.0, prompt=0.0, view=0.0))
    base = raw(options, sizes.warmup, sizes.steps, sizes.image_size)
    _free("cuda" if torch.cuda.is_available() else "cpu")
    loop = ours(str(data), options, sizes.warmup, sizes.steps, workers, "gpu-check")
    return [_row("train.raw", f"raw open_clip {sizes.clip_model} on tensors", base, "samples/s",
                 batch=sizes.train_batch, steps=sizes.steps),
            _row("train.ours", "our loop (shards, decode, augment, step)", loop, "samples/s", workers=workers),
            _row("train.ratio", "ours / raw", loop / base, "x", goal=GOALS["train_ratio"])]


def check_embed(sizes: Sizes, data: Path, device: str) -> list[dict[str, Any]]:
    """Images/s of an exported model over the release shards: PNG decode + eval transform + encode, batch 256."""
    from designclip.pipeline.embed.encoder import EncoderSpec, load_encoder
    from designclip.pipeline.train.export import export_model
    from designclip.pipeline.train.model import build_design_clip

    tiny = sizes.clip_model == "designclip-tiny"
    config = tiny_model_config() if tiny else None
    model, _, _, _ = build_design_clip(sizes.clip_model, model_config=config)
    folder = export_model(model, data / "models" / "gpu-check", config or sizes.clip_model, {"run": "gpu-check"})
    encoder = load_encoder(EncoderSpec(str(folder)), device=device)
    shards = sorted((data / "releases" / "bench" / "train").glob("*.tar"))
    encoder.encode_images([decode_image(m["png"]) for _, m in list(tar_samples(str(shards[0])))[:8]])  # warm-up
    _sync(device)
    started, count, batch = time.perf_counter(), 0, []
    for shard in shards:
        for _, members in tar_samples(str(shard)):
            batch.append(decode_image(members["png"]))
            if len(batch) == 256:
                count += len(encoder.encode_images(batch))
                batch = []
    count += len(encoder.encode_images(batch))
    _sync(device)
    rate = count / (time.perf_counter() - started)
    return [_row("embed.rate", f"{sizes.clip_model} export, {encoder.precision}", rate, "images/s", images=count,
                 dim=encoder.dim)]


def check_faiss(sizes: Sizes, gpu: bool) -> list[dict[str, Any]]:
    """Seconds to build the index stage's IVF-PQ index (k-means on the GPU when asked)."""
    try:
        import faiss  # noqa: F401
        import numpy as np
        from designclip.pipeline.index.faiss_index import build_index, gpu_available
        from designclip.pipeline.index.plan import plan_index
    except ImportError as err:
        return [_row("faiss.build", "skipped", None, "", note=f"faiss is not installed ({err})")]
    if gpu and not gpu_available():
        return [_row("faiss.build", "skipped", None, "", note="faiss sees no GPU (faiss.get_num_gpus() == 0)")]
    n, dim = sizes.faiss_vectors, sizes.faiss_dim
    x = np.random.default_rng(0).standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    plan = plan_index(n, dim, memory_budget_bytes=3 * n * dim, flat_max=0, hnsw_max=0)  # < flat: IVF-PQ
    started = time.perf_counter()
    build_index(x, np.arange(n, dtype=np.int64), plan, use_gpu=gpu)
    seconds = time.perf_counter() - started
    return [_row("faiss.build", f"{plan.factory} build on the {'GPU' if gpu else 'CPU'}", n / seconds, "vectors/s",
                 vectors=n, dim=dim, seconds=round(seconds, 2))]


# ------------------------------------------------------------------------------------------------- report

def check_higuchi(sizes: Sizes, device: str) -> list[dict[str, Any]]:
    """Training images/s of Higuchi's recipe (random weights: no hub here) and the 25-epoch time it implies."""
    from designclip.pipeline.train.higuchi import HIGUCHI, HIGUCHI_MODEL
    from designclip.pipeline.train.sheet_transforms import SheetTransformSettings
    from designclip.pipeline.train.timm_backbone import SheetPreprocess, build_timm_arcface, focal_cross_entropy

    tiny = sizes.llava == "tiny"
    side, batch, steps, warmup = (64, 4, 3, 1) if tiny else (384, 64, 20, 3)
    name, kwargs = ("swinv2_tiny_window8_256", HIGUCHI_TINY) if tiny else (HIGUCHI_MODEL, None)
    model = build_timm_arcface(name, 20_000, timm_kwargs=kwargs, sheet=SheetPreprocess(
        "higuchi", SheetTransformSettings(image_size=side)), s=HIGUCHI.arcface_s, m=HIGUCHI.arcface_m).to(device)
    optimizer = torch.optim.Adam([{"params": [p for n, p in model.named_parameters() if not n.startswith("margin")],
                                   "lr": HIGUCHI.lr}, {"params": model.margin.parameters(), "lr": HIGUCHI.lr_head}])
    images = torch.rand(batch, 1, side, side, device=device)
    labels = torch.randint(0, 20_000, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = focal_cross_entropy(model(images, labels)["logits"].float(), labels, HIGUCHI.focal_gamma)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    rate = batch * steps / (time.perf_counter() - t0)
    hours = HIGUCHI.epochs * DEEPPATENT_TRAIN_SHEETS / rate / 3600
    return [_row("higuchi.train", f"{name} {side}px, batch {batch}, focal ArcFace, Adam", rate, "images/s",
                 steps=steps),
            _row("higuchi.25_epochs", f"25 epochs of ~{DEEPPATENT_TRAIN_SHEETS:,} sheets at that speed", hours,
                 "hours (one GPU)")]


def _row(key: str, what: str, value: float | None, unit: str, goal: float | None = None, **extra: Any
         ) -> dict[str, Any]:
    """One table row; `key` ('train.ratio') is stable for whoever reads the JSON."""
    met = None if goal is None or value is None else value >= goal
    return {"key": key, "step": key.split(".")[0], "what": what,
            "value": None if value is None else round(value, 3), "unit": unit, "goal": goal, "met": met, **extra}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _free(device: str) -> None:
    import gc

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| step | what | value | unit | goal | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:.2f}"
        goal = "" if r["goal"] is None else f">= {r['goal']:g}"
        met = {None: "", True: "yes", False: "NO"}[r["met"]]
        what = r["what"] + (f" ({r['note']})" if r.get("note") else "")
        lines.append(f"| {r['step']} | {what} | {value} | {r['unit']} | {goal} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="tiny models on the CPU (CI smoke run, < 2 minutes)")
    p.add_argument("--json", default="gpu_check.json", help="where to write the rows as JSON")
    p.add_argument("--budget", type=float, default=None, help="seconds; later steps are skipped (default 540 / 110)")
    p.add_argument("--workers", type=int, default=None, help="training loader processes (default: CPUs - 1)")
    args = p.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        p.error("no CUDA GPU visible: run on one H100/H200, or pass --cpu for the tiny CPU run")
    sizes, device = (CPU, "cpu") if args.cpu else (GPU, "cuda")
    budget = args.budget or (110.0 if args.cpu else 540.0)
    workers = args.workers if args.workers is not None else (1 if args.cpu else max(1, (os.cpu_count() or 2) - 1))
    started = time.perf_counter()
    pngs = [drawing(i) for i in range(64)]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="designclip-gpu-check-") as tmp:
        data = Path(tmp) / "data"
        write_release(data, sizes, pngs)
        steps: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = [
            ("caption", lambda: check_caption(sizes, device, pngs)),
            ("train", lambda: check_train(sizes, data, workers)),
            ("embed", lambda: check_embed(sizes, data, device)),
            ("faiss", lambda: check_faiss(sizes, gpu=not args.cpu)),
            ("higuchi", lambda: check_higuchi(sizes, device)),
        ]
        for name, step in steps:
            if time.perf_counter() - started > budget:
                rows.append(_row(f"{name}.skipped", "skipped", None, "", note=f"time budget {budget:.0f}s spent"))
                continue
            t0 = time.perf_counter()
            got = step()
            _free(device)  # the step's models are gone: give their memory back before the next one
            for r in got:
                r["step_s"] = round(time.perf_counter() - t0, 1)
                r["met"] = None if args.cpu else r["met"]  # the goals are for the GPU run
                print(f"{name}: {r['what']}: {r['value']} {r['unit']}", flush=True)
            rows += got
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (--cpu)"
    report = {"mode": "cpu" if args.cpu else "gpu", "device": gpu, "cpus": os.cpu_count(),
              "torch": torch.__version__, "python": platform.python_version(),
              "total_s": round(time.perf_counter() - started, 1), "prefect_imported": "prefect" in sys.modules,
              "rows": rows}
    print(f"\n{gpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, {report['total_s']}s\n{table(rows)}")
    if args.cpu:
        print("CPU run: tiny models; the goals apply to the GPU run only.")
    Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
