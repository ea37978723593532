"""Export a trained model as a folder plain open_clip loads (`local-dir:PATH`), plus the DesignCLIP heads and metadata.

Layout: open_clip_config.json ({model_cfg, preprocess_cfg}) + open_clip_model.safetensors (the open_clip state dict)
are exactly what `open_clip.create_model_and_transforms('local-dir:PATH')` reads; designclip_heads.safetensors holds
the class/Locarno heads (or the ArcFace projection and margin centres) and designclip.json, written last, says what
the folder is. The view preprocessing before open_clip's transform (keep_ink, input size) is in designclip.json's
`preprocess` and, for a copy of the open_clip files alone, in open_clip_config.json's `designclip_preprocess`.
Every file is written under a temporary name in the folder and renamed into place.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from designclip.pipeline.common.classes import locarno_class_titles
from designclip.pipeline.train.model import (
    ArcFaceModel,
    DesignClip,
    LossWeights,
    ViewPreprocess,
    build_clip,
    class_prompts,
    input_size,
    us_class_index,
)
from designclip.pipeline.train.timm_backbone import TimmArcFaceModel, rebuild_from_meta, sheet_eval_transform
from open_clip.transform import PreprocessCfg, image_transform_v2
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
HEADS_FILE = "designclip_heads.safetensors"
META_FILE = "designclip.json"
EXPORT_FORMAT = 1
OPEN_CLIP_PREPROCESS_KEY = "designclip_preprocess"  # open_clip ignores it; the folder alone still says how views go in

log = logging.getLogger(__name__)


class ExportError(ValueError):
    """A folder that is not a complete DesignCLIP export."""


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary sibling + fsync + rename, so readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def _write_tensors(path: Path, tensors: dict[str, Tensor]) -> None:
    _atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))


def _cpu_state(module: nn.Module) -> dict[str, Tensor]:
    """A detached CPU copy with no shared storage (safetensors refuses aliased tensors)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def _head_state(model: DesignClip | ArcFaceModel) -> dict[str, Tensor]:
    """Head tensors keyed '<head>.<param>' (class_head.weight, margin.weight, bn.running_mean, ...)."""
    return {f"{name}.{k}": v for name, mod in model.head_modules().items() for k, v in _cpu_state(mod).items()}


def _preprocess_cfg(model: DesignClip | ArcFaceModel) -> dict[str, Any]:
    """The image preprocessing open_clip attached to the visual tower at creation (size, mean, std, ...)."""
    cfg = getattr(model.clip.visual, "preprocess_cfg", None)
    if cfg is None:
        cfg = asdict(PreprocessCfg(size=model.model_cfg["vision_cfg"].get("image_size", 224)))
    return json.loads(json.dumps(cfg))


def _save_hf_tokenizer(model: DesignClip | ArcFaceModel, out: Path) -> None:
    """HF-text-tower configs: open_clip's local-dir loader reads the tokenizer files from the folder itself."""
    if not model.model_cfg.get("text_cfg", {}).get("hf_tokenizer_name"):
        return
    inner = getattr(getattr(model, "tokenizer", None), "tokenizer", None)
    if inner is None or not hasattr(inner, "save_pretrained"):
        raise ExportError("this config uses an HF tokenizer, but the model carries none to save into the export")
    inner.save_pretrained(str(out))


def _source_name(model_name_or_config: str | dict[str, Any]) -> str:
    return model_name_or_config if isinstance(model_name_or_config, str) else "custom"


def _clip_meta(model: DesignClip) -> dict[str, Any]:
    """DesignClip specifics: class map/titles/prompts, Locarno head size, loss weights."""
    locarno = sorted(locarno_class_titles())  # train_data.locarno_index: sorted codes of the release's classes.json
    return {
        "objective": "clip",
        "embed_dim": model.embed_dim,
        "class_index": {code: i for i, code in enumerate(model.class_titles)},
        "class_titles": model.class_titles,
        "prompt_template": model.prompt_template,
        "class_prompts": class_prompts(model.class_titles, model.prompt_template),
        "num_locarno": model.num_locarno,
        "locarno_index": ({code: i for i, code in enumerate(locarno)} if model.num_locarno == len(locarno) else None),
        "loss_weights": asdict(model.loss_weights) if model.loss_weights is not None else None,
    }


def _arcface_meta(model: ArcFaceModel) -> dict[str, Any]:
    """ArcFace specifics: embedding width, BN, margin settings and number of training identities."""
    head = model.margin
    return {
        "objective": "arcface",
        "embed_dim": model.embed_dim,
        "class_index": us_class_index(),
        "class_titles": None,
        "arcface": {"num_classes": head.num_classes, "embed_dim": model.embed_dim, "batch_norm": model.bn is not None,
                    "s": head.s, "m": head.m, "easy_margin": head.easy_margin,
                    "clip_embed_dim": int(model.model_cfg["embed_dim"])},
    }


def _timm_heads(model: TimmArcFaceModel) -> dict[str, nn.Module]:
    """Every layer of a timm sheet model beyond its backbone (head and margin), as exported."""
    return {"head": model.head, "margin": model.margin}


def _export_timm(model: TimmArcFaceModel, out: Path, extra: dict[str, Any] | None) -> Path:
    """A timm sheet model: backbone tensors, head + margin tensors, and designclip.json (no open_clip files)."""
    _write_tensors(out / WEIGHTS_FILE, _cpu_state(model.backbone))
    _write_tensors(out / HEADS_FILE, {f"{name}.{k}": v for name, mod in _timm_heads(model).items()
                                      for k, v in _cpu_state(mod).items()})
    _write_json(out / META_FILE, {"format": EXPORT_FORMAT, "model": model.timm_name, "objective": "arcface",
                                  "embed_dim": model.embed_dim, "class_index": us_class_index(), "class_titles": None,
                                  **model.meta(), "preprocess": model.view_preprocess.record(),
                                  "files": [WEIGHTS_FILE, HEADS_FILE], "extra": extra or {}})
    return out


def export_model(model: DesignClip | ArcFaceModel | TimmArcFaceModel, out_dir: str | Path,
                 model_name_or_config: str | dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """Write the export folder (designclip.json last, as the completion marker); returns its path."""
    if isinstance(model, TimmArcFaceModel):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        return _export_timm(model, Path(out_dir), extra)
    if not isinstance(model, DesignClip | ArcFaceModel):
        raise TypeError(f"export_model needs a DesignClip or ArcFaceModel (unwrapped), got {type(model).__name__}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / CONFIG_FILE, {"model_cfg": model.model_cfg, "preprocess_cfg": _preprocess_cfg(model),
                                    OPEN_CLIP_PREPROCESS_KEY: model.view_preprocess.record()})
    _write_tensors(out / WEIGHTS_FILE, _cpu_state(model.clip))
    _write_tensors(out / HEADS_FILE, _head_state(model))
    _save_hf_tokenizer(model, out)
    meta = _clip_meta(model) if isinstance(model, DesignClip) else _arcface_meta(model)
    _write_json(out / META_FILE, {"format": EXPORT_FORMAT, "model": _source_name(model_name_or_config), **meta,
                                  "preprocess": model.view_preprocess.record(),
                                  "files": [CONFIG_FILE, WEIGHTS_FILE, HEADS_FILE], "extra": extra or {}})
    return out


def read_export_meta(path: str | Path) -> dict[str, Any]:
    """designclip.json of a finished export (its absence means the export never completed)."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise ExportError(f"{path}: no {META_FILE} — not a (complete) DesignCLIP export")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: export format {meta.get('format')!r}, this code reads {EXPORT_FORMAT}")
    return meta


def _load_heads(model: DesignClip | ArcFaceModel | TimmArcFaceModel, tensors: dict[str, Tensor]) -> None:
    """Load each head strictly from its '<head>.' slice; leftover keys mean a mismatched export."""
    used: set[str] = set()
    heads = _timm_heads(model) if isinstance(model, TimmArcFaceModel) else model.head_modules()
    for name, mod in heads.items():
        prefix = f"{name}."
        part = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        mod.load_state_dict(part, strict=True)
        used.update(prefix + k for k in part)
    if leftover := sorted(set(tensors) - used):
        raise ExportError(f"{HEADS_FILE} has tensors for heads this model lacks: {leftover}")


def _rebuild(meta: dict[str, Any], clip: nn.Module, tokenizer: Callable[..., Tensor]) -> DesignClip | ArcFaceModel:
    """An untrained wrapper of the right shape around the loaded open_clip model."""
    if meta["objective"] == "clip":
        weights = meta.get("loss_weights")
        return DesignClip(clip, tokenizer, num_locarno=int(meta["num_locarno"]),
                          prompt_template=meta["prompt_template"], class_titles=meta["class_titles"],
                          loss_weights=LossWeights(**weights) if weights else None)
    if meta["objective"] == "arcface":
        a = meta["arcface"]
        return ArcFaceModel(clip, int(a["num_classes"]), embed_dim=int(a["embed_dim"]),
                            batch_norm=bool(a["batch_norm"]), s=float(a["s"]), m=float(a["m"]),
                            easy_margin=bool(a["easy_margin"]), tokenizer=tokenizer)
    raise ExportError(f"unknown objective {meta['objective']!r}")


def _view_preprocess(meta: dict[str, Any], folder: Path, clip: nn.Module) -> ViewPreprocess:
    """The view preprocessing training used; none beyond open_clip's for an export from before it was recorded."""
    record = meta.get("preprocess")
    if record is None:
        log.info("%s: the export does not record its view preprocessing (made before keep_ink was recorded): views "
                 "go through open_clip's transform alone, as they did then; re-export the run to match training",
                 folder)
        return ViewPreprocess(keep_ink=False, input_size=input_size(clip))
    return ViewPreprocess(keep_ink=bool(record["keep_ink"]), input_size=int(record["input_size"]))


def _load_timm(folder: Path, meta: dict[str, Any], device: str | torch.device) -> TimmArcFaceModel:
    """A timm sheet model from its export: rebuilt from designclip.json, then every tensor loaded strictly."""
    model = rebuild_from_meta(meta)
    model.backbone.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
    _load_heads(model, load_file(str(folder / HEADS_FILE)))
    return model.to(device).eval()


def load_exported(path: str | Path, device: str | torch.device = "cpu"
                  ) -> DesignClip | ArcFaceModel | TimmArcFaceModel:
    """Rebuild the trained model from an export folder (open_clip via local-dir:, then the heads); eval mode."""
    folder = Path(path).resolve()
    meta = read_export_meta(folder)
    if meta.get("backbone") == "timm":
        return _load_timm(folder, meta, device)
    clip, _, _, tokenizer = build_clip(f"local-dir:{folder}", device=device)
    model = _rebuild(meta, clip, tokenizer)
    model.view_preprocess = _view_preprocess(meta, folder, clip)
    _load_heads(model, load_file(str(folder / HEADS_FILE)))
    return model.to(device).eval()


def exported_eval_transform(model: DesignClip | ArcFaceModel | TimmArcFaceModel) -> Callable[..., Tensor]:
    """Training's view input minus augmentation: the recorded ink-keeping min-pool, then open_clip's eval transform
    (a timm sheet model: its recorded sheet settings' eval transform)."""
    if isinstance(model, TimmArcFaceModel):
        return sheet_eval_transform(model)
    base = image_transform_v2(PreprocessCfg(**model.clip.visual.preprocess_cfg), is_train=False)
    return model.view_preprocess.wrap(base)
