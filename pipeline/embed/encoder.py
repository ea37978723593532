"""Image and text encoders for embedding: a trained export, a plain open_clip folder, or any open_clip model.

Every encoder returns float32, L2-normalised rows, whatever precision it ran in, so vectors from different runs
of the same weights are comparable; `record()` names the weights by content hash, so a model tag can never
silently mean two different models.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from designclip.pipeline.train.model import (
    DEFAULT_PROMPT_TEMPLATE,
    ModelLoadError,
    ViewPreprocess,
    build_clip,
    input_size,
    register_model_config,
)
from designclip.pipeline.train.model import class_prompts as format_prompts
from designclip.pipeline.train.model_configs import bundled_model_configs
from PIL import Image
from torch import Tensor, nn

EXPORT_META = "designclip.json"  # designclip.pipeline.train.export.META_FILE (not imported: keeps this module light)
OPEN_CLIP_CONFIG = "open_clip_config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
RANDOM_SEED = 0  # random-init baselines are built from this seed, so a rerun gives the same weights
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class EncoderError(RuntimeError):
    """An encoder that cannot be loaded or used; the message says what to do instead."""


@dataclass(frozen=True)
class EncoderSpec:
    """Which model embeds: a folder, a run name, an open_clip name (+ pretrained tag) or `hf-hub:org/name`."""

    model: str
    pretrained: str | None = None


# ------------------------------------------------------------------------------------------------- naming


def _is_path(model: str) -> bool:
    """Folders are written as paths (`./m`, `/data/models/m`, `local-dir:m`); bare names are runs or open_clip."""
    return model.startswith(("local-dir:", ".", "~", "/")) or "/" in model or "\\" in model


def _folder(model: str) -> Path:
    return Path(model.removeprefix("local-dir:")).expanduser()


def _open_clip_names() -> set[str]:
    import open_clip

    return set(open_clip.list_models()) | set(bundled_model_configs())


def _safe(text: str) -> str:
    return _TAG_UNSAFE.sub("-", text).strip("-.") or "model"


def model_tag(spec: EncoderSpec) -> str:
    """The filesystem-safe name the vectors are stored under (embeddings/RELEASE/TAG).

    Folder -> its name; run -> the run name; `ViT-B-32` + `openai` -> `ViT-B-32-openai`; `hf-hub:org/name` ->
    `hf-hub-org-name`; an open_clip name with no pretrained tag (random init) -> `NAME-random`.
    """
    model = spec.model.strip()
    if not model:
        raise EncoderError("empty model: pass a model folder, a run name or an open_clip name")
    suffix = f"-{spec.pretrained}" if spec.pretrained else ""
    if model.startswith("hf-hub:"):
        return _safe(model.replace(":", "-").replace("/", "-") + suffix)
    if _is_path(model):
        return _safe(_folder(model).resolve().name + suffix)
    if spec.pretrained:
        return _safe(model + suffix)
    return _safe(f"{model}-random" if model in _open_clip_names() else model)


# ------------------------------------------------------------------------------------------------- hashing


def _sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def state_dict_sha256(module: nn.Module) -> str:
    """Content hash of a module's tensors (names, dtypes, shapes, values) for weights that have no file here."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\0".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


# ------------------------------------------------------------------------------------------------- encoder


def _autocast_dtype(device: str, precision: str) -> torch.dtype | None:
    """None (float32) on CPU; on CUDA bf16 where supported, else fp16 (`precision` 'fp32' switches it off)."""
    if not device.startswith("cuda") or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


class ClipEncoder:
    """One loaded model: PIL images / strings in, (n, dim) float32 L2-normalised numpy rows out."""

    def __init__(self, model: nn.Module, transform: Callable[[Image.Image], Tensor],
                 tokenizer: Callable[..., Tensor] | None, *, tag: str, dim: int, device: str,
                 info: dict[str, Any], prompt_template: str | None = None, precision: str = "auto") -> None:
        if precision not in ("auto", "fp32", "fp16", "bf16"):
            raise EncoderError(f"precision {precision!r}: use auto, fp32, fp16 or bf16")
        self.model, self.transform, self.tokenizer = model.eval(), transform, tokenizer
        self.tag, self.dim, self.device = tag, int(dim), device
        self.info = info
        self.prompt_template = prompt_template
        self.autocast = _autocast_dtype(device, precision)

    @property
    def has_text(self) -> bool:
        """False for image-only models (ArcFace exports): they embed drawings but not captions."""
        return self.tokenizer is not None and hasattr(self.model, "encode_text")

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.autocast]

    def _amp(self) -> AbstractContextManager[Any]:
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.autocast)

    def _finish(self, features: Tensor) -> np.ndarray:
        out = features.float()
        out = out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return out.cpu().numpy().astype(np.float32, copy=False)

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        """(n, dim) vectors of RGB (or gray, converted by the transform) drawings."""
        if not images:
            return np.zeros((0, self.dim), np.float32)
        batch = torch.stack([self.transform(img) for img in images]).to(self.device)
        with torch.inference_mode(), self._amp():
            return self._finish(self.model.encode_image(batch))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """(n, dim) vectors of captions / queries (truncated to the model's context length)."""
        if not self.has_text:
            raise EncoderError(f"{self.tag} is an image-only model (no text tower): embed drawings only, or use a "
                               "CLIP export for captions and text search")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        tokens = self.tokenizer(list(texts)).to(self.device)  # type: ignore[misc]
        with torch.inference_mode(), self._amp():
            return self._finish(self.model.encode_text(tokens))

    def class_prompts(self, titles: dict[str, str]) -> list[str]:
        """One prompt per class in `titles` order: the model's own training template, else the default one."""
        return format_prompts(titles, self.prompt_template or DEFAULT_PROMPT_TEMPLATE)

    def record(self) -> dict[str, Any]:
        """What encoder.json stores: the spec, tag, width and the weights' content hash (the model's identity)."""
        return {"tag": self.tag, "dim": self.dim, "has_text": self.has_text,
                "prompt_template": self.prompt_template or DEFAULT_PROMPT_TEMPLATE, **self.info}


class _OpenClipModel(nn.Module):
    """A bare open_clip model behind the encode_image/encode_text names the wrappers use."""

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.clip = clip

    def encode_image(self, images: Tensor) -> Tensor:
        return self.clip.encode_image(images)

    def encode_text(self, texts: Tensor) -> Tensor:
        return self.clip.encode_text(texts)


# ------------------------------------------------------------------------------------------------- loading


def _resolve_device(device: str | None) -> str:
    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EncoderError(f"device {device!r} asked for, but torch sees no CUDA GPU: leave --device unset")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _export_init(extra: dict) -> str:
    """What the export's weights are: a run's steps on a release, or an export that never trained."""
    steps = extra.get("steps")
    if steps:
        return f"trained ({steps} steps of run {extra.get('run')} on {extra.get('release', {}).get('version', '?')})"
    return "exported without training steps"


def _spec_info(spec: EncoderSpec) -> dict[str, Any]:
    return {"spec": {"model": spec.model, "pretrained": spec.pretrained}}


def _load_export(folder: Path, spec: EncoderSpec, tag: str, device: str, precision: str,
                 source: str) -> ClipEncoder:
    from designclip.pipeline.train.export import (
        HEADS_FILE,
        WEIGHTS_FILE,
        exported_eval_transform,
        load_exported,
        read_export_meta,
    )

    meta = read_export_meta(folder)
    try:
        model = load_exported(folder, device=device)
    except Exception as exc:  # noqa: BLE001 - any load failure becomes one actionable message
        raise EncoderError(f"{folder}: the export does not load ({exc}); re-export the run "
                           "(`designclip train` finishes by exporting models/RUN)") from exc
    files = [folder / WEIGHTS_FILE, folder / HEADS_FILE]
    clip_like = meta["objective"] == "clip"
    info = {**_spec_info(spec), "kind": f"designclip-{meta['objective']}", "source": source, "path": str(folder),
            "model_name": meta.get("model"), "init": _export_init(meta.get("extra", {})),
            "weights_sha256": _sha256_files(files), "weights_files": [p.name for p in files],
            "export": {k: meta.get("extra", {}).get(k) for k in ("run", "release", "steps")},
            "preprocess": {**model.view_preprocess.record(), "recorded": "preprocess" in meta}}
    return ClipEncoder(model, exported_eval_transform(model), getattr(model, "tokenizer", None) if clip_like else None,
                       tag=tag, dim=int(meta["embed_dim"]), device=device, info=info,
                       prompt_template=meta.get("prompt_template") if clip_like else None, precision=precision)


def _wrap_clip(clip: nn.Module, eval_tf: Callable[..., Tensor], tokenizer: Callable[..., Tensor], *, spec: EncoderSpec,
               tag: str, device: str, precision: str, info: dict[str, Any]) -> ClipEncoder:
    dim = int(getattr(clip, "open_clip_cfg", {}).get("embed_dim") or clip.text_projection.shape[-1])
    return ClipEncoder(_OpenClipModel(clip).to(device), eval_tf, tokenizer, tag=tag, dim=dim, device=device,
                       info={**_spec_info(spec), **info}, precision=precision)


def _folder_preprocess(folder: Path, clip: nn.Module) -> dict[str, Any]:
    """The view preprocessing an exported open_clip config records (a copy of a DesignCLIP export's open_clip files);
    a folder from elsewhere gets open_clip's transform alone."""
    from designclip.pipeline.train.export import OPEN_CLIP_PREPROCESS_KEY

    record = json.loads((folder / OPEN_CLIP_CONFIG).read_text()).get(OPEN_CLIP_PREPROCESS_KEY)
    if record is None:
        return {"keep_ink": False, "input_size": input_size(clip), "recorded": False}
    return {"keep_ink": bool(record["keep_ink"]), "input_size": int(record["input_size"]), "recorded": True}


def _load_open_clip_folder(folder: Path, spec: EncoderSpec, tag: str, device: str, precision: str,
                           source: str) -> ClipEncoder:
    try:
        clip, _, eval_tf, tokenizer = build_clip(f"local-dir:{folder}")
    except ModelLoadError as exc:
        raise EncoderError(f"{folder}: not a loadable open_clip folder ({exc})") from exc
    files = _weight_files(folder)
    preprocess = _folder_preprocess(folder, clip)
    info = {"kind": "open_clip-folder", "source": source, "path": str(folder), "model_name": f"local-dir:{folder}",
            "init": "pretrained (local folder)", "weights_sha256": _sha256_files(files) if files else
            state_dict_sha256(clip), "weights_files": [p.name for p in files], "preprocess": preprocess}
    view_tf = ViewPreprocess(preprocess["keep_ink"], preprocess["input_size"]).wrap(eval_tf)
    return _wrap_clip(clip, view_tf, tokenizer, spec=spec, tag=tag, device=device, precision=precision, info=info)


def _load_folder(folder: Path, spec: EncoderSpec, tag: str, device: str, precision: str, source: str) -> ClipEncoder:
    if (folder / EXPORT_META).is_file():
        return _load_export(folder, spec, tag, device, precision, source)
    if (folder / OPEN_CLIP_CONFIG).is_file():
        return _load_open_clip_folder(folder, spec, tag, device, precision, source)
    raise EncoderError(f"{folder}: neither a DesignCLIP export ({EXPORT_META}) nor an open_clip folder "
                       f"({OPEN_CLIP_CONFIG}); pass models/RUN of a finished `designclip train` run")


def _register_bundled(name: str) -> None:
    bundled = bundled_model_configs()
    if name in bundled:
        register_model_config(bundled[name], name)


def _load_named(spec: EncoderSpec, tag: str, device: str, precision: str) -> ClipEncoder:
    """An open_clip registry name (random init or + pretrained tag) or an hf-hub model."""
    _register_bundled(spec.model)
    hub = spec.model.startswith("hf-hub:")
    try:
        if spec.pretrained or hub:
            clip, _, eval_tf, tokenizer = build_clip(spec.model, spec.pretrained)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_SEED)
                clip, _, eval_tf, tokenizer = build_clip(spec.model)
    except ModelLoadError as exc:
        what = spec.model + (f" ({spec.pretrained})" if spec.pretrained else "")
        raise EncoderError(
            f"could not load {what}: {str(exc).rstrip('.')}. Pretrained weights cannot be downloaded offline: fetch "
            "them on a connected machine (the HF cache), or save them as an open_clip folder and pass that local "
            "folder as --model") from exc
    random = f"random init (seed {RANDOM_SEED})"
    init = f"pretrained {spec.pretrained or 'hf-hub'}" if spec.pretrained or hub else random
    info = {"kind": "hf-hub" if hub else "open_clip", "source": spec.model, "path": None, "model_name": spec.model,
            "init": init, "weights_sha256": state_dict_sha256(clip), "weights_files": [],
            "preprocess": {"keep_ink": False, "input_size": input_size(clip), "recorded": False}}
    return _wrap_clip(clip, eval_tf, tokenizer, spec=spec, tag=tag, device=device, precision=precision, info=info)


def _run_folder(data_root: str | None, run: str) -> Path:
    """models/RUN under the data root; a clear error listing the runs there (or saying how to make one)."""
    if data_root is None:
        raise EncoderError(f"{run!r} is neither a folder nor an open_clip model name; for a run name pass the data "
                           "root, for a folder pass its path (./NAME)")
    from designclip.storage import layout
    from designclip.storage.folder import DataFolder

    folder = DataFolder(data_root)
    if not folder.is_local:
        raise EncoderError(f"models under {data_root} are not local: copy models/{run} here and pass that folder")
    path = Path(folder.path(layout.model_dir(run)))
    if path.is_dir():
        return path
    models = Path(folder.path("models"))
    runs = sorted(p.name for p in models.iterdir() if (p / EXPORT_META).is_file()) if models.is_dir() else []
    have = f"runs with a model under {models}: {', '.join(runs)}" if runs else f"no trained models under {models}"
    raise EncoderError(f"no model {run!r}: not a folder, not an open_clip model name and not a run ({have}). Train "
                       f"one with `designclip train --release R --run {run}`, or pass a model folder or an open_clip "
                       "name (ViT-B-32 --pretrained openai)")


def load_encoder(spec: EncoderSpec, data_root: str | None = None, device: str | None = None,
                 precision: str = "auto", tag: str | None = None) -> ClipEncoder:
    """Load the encoder `spec` names (GPU when present); `tag` overrides the stored-under name (model_tag)."""
    dev = _resolve_device(device)
    name = tag or model_tag(spec)
    if name != _safe(name):
        raise EncoderError(f"tag {name!r}: use letters, digits, '.', '_' and '-' only")
    model = spec.model.strip()
    if model.startswith("hf-hub:") or spec.pretrained:
        encoder = _load_named(spec, name, dev, precision)
    elif _is_path(model):
        folder = _folder(model).resolve()
        if not folder.is_dir():
            raise EncoderError(f"model folder {folder} does not exist")
        encoder = _load_folder(folder, spec, name, dev, precision, "folder")
    elif model in _open_clip_names():
        encoder = _load_named(spec, name, dev, precision)
    else:
        encoder = _load_folder(_run_folder(data_root, model), spec, name, dev, precision, "run")
    return encoder
