"""What one training run is made of: the model for the objective, its loss, optimizer groups and data stream."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from designclip.pipeline.train.data import (
    PatentBatches,
    TrainBatch,
    locarno_index,
    make_loader,
    patent_index,
    split_shards,
)
from designclip.pipeline.train.deeppatent_data import SheetBatches, make_sheet_loader, read_train_list
from designclip.pipeline.train.model import (
    arcface_loss,
    build_arcface,
    build_design_clip,
    clamp_logit_scale,
    design_clip_loss,
    param_groups,
)
from designclip.pipeline.train.options import TrainError, TrainOptions
from designclip.pipeline.train.sheet_transforms import sheet_settings, train_transform
from designclip.pipeline.train.timm_backbone import SheetPreprocess, build_timm_arcface, focal_cross_entropy
from torch.utils.data import DataLoader

LossFn = Callable[[torch.nn.Module, TrainBatch], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class TrainParts:
    """The model, its loss and optimizer groups, and a factory for the (resumable) batch stream."""

    model: torch.nn.Module
    param_groups: list[dict[str, Any]]
    loss: LossFn
    after_step: Callable[[torch.nn.Module], None]
    make_stream: Callable[..., DataLoader]
    train_samples: int
    patents: dict[str, int]

    def loader(self, skip_batches: int, process_index: int = 0, num_processes: int = 1,
               workers: int = 2) -> DataLoader:
        return self.make_stream(skip_batches, process_index, num_processes, workers)


def _clip_parts(options: TrainOptions, locarno: dict[str, int] | None) -> tuple[Any, Any, Any, LossFn, Callable]:
    w = options.weights
    model, train_tf, _, tokenizer = build_design_clip(
        options.model, options.pretrained, options.model_config, num_locarno=len(locarno or {}),
        grad_checkpointing=options.grad_checkpointing, loss_weights=w, keep_ink=options.keep_ink)

    def loss(m: torch.nn.Module, b: TrainBatch) -> tuple[torch.Tensor, dict[str, float]]:
        out = m(b.images, b.texts if w.clip > 0 else None, with_prompts=w.prompt > 0)
        return design_clip_loss(out, b.cls, b.locarno, b.patent, w, options.view_temperature)

    return model, train_tf, tokenizer, loss, clamp_logit_scale


def _timm_model(options: TrainOptions, classes: int) -> Any:
    """The seed's timm model; `pretrained` 'default' (or any tag, appended to the name) loads timm's weights."""
    preset = options.preset or "higuchi"
    name, tag = options.model, options.pretrained
    if tag and tag != "default":
        name = f"{name}.{tag}"
    settings = sheet_settings(preset)
    if options.image_size is not None:
        settings = dataclasses.replace(settings, image_size=options.image_size)
    sheet = SheetPreprocess(preset, settings)
    return build_timm_arcface(name, classes, pretrained=bool(tag), timm_kwargs=options.timm_kwargs, sheet=sheet,
                              dropout=options.dropout, s=options.arcface_s, m=options.arcface_m,
                              easy_margin=options.easy_margin, grad_checkpointing=options.grad_checkpointing)


def _arcface_loss(options: TrainOptions) -> LossFn:
    def loss(m: torch.nn.Module, b: TrainBatch) -> tuple[torch.Tensor, dict[str, float]]:
        value = focal_cross_entropy(m(b.images, b.patent)["logits"], b.patent, options.focal_gamma)
        return value, {"loss_arcface": float(value.detach())}

    return loss


def _arcface_parts(options: TrainOptions, classes: int) -> tuple[Any, Any, Any, LossFn, Callable]:
    if options.backbone == "timm":
        model = _timm_model(options, classes)
        return model, train_transform(model.view_preprocess.settings), _no_text, _arcface_loss(options), _nothing
    model, train_tf, _ = build_arcface(options.model, classes, options.pretrained, options.model_config,
                                       s=options.arcface_s, m=options.arcface_m, easy_margin=options.easy_margin,
                                       grad_checkpointing=options.grad_checkpointing, keep_ink=options.keep_ink)

    loss = _arcface_loss(options) if options.focal_gamma > 0 else _plain_arcface_loss
    return model, train_tf, _no_text, loss, _nothing


def _plain_arcface_loss(m: torch.nn.Module, b: TrainBatch) -> tuple[torch.Tensor, dict[str, float]]:
    value = arcface_loss(m(b.images, b.patent), b.patent)
    return value, {"loss_arcface": float(value.detach())}


def _no_text(texts: list[str]) -> torch.Tensor:  # ArcFace reads no captions
    return torch.zeros(len(texts), 1, dtype=torch.long)


def _nothing(_model: torch.nn.Module) -> None:
    return None


def build(release_dir: str, options: TrainOptions) -> TrainParts:
    """Everything the loop needs for `options.objective` on the release's train split."""
    shards, total = split_shards(release_dir, "train")
    patents = patent_index(release_dir, "train")
    locarno = locarno_index(release_dir) if options.contrastive and options.weights.locarno > 0 else None
    if options.contrastive:
        model, transform, tokenize, loss, after = _clip_parts(options, locarno)
    else:
        model, transform, tokenize, loss, after = _arcface_parts(options, len(patents))
    groups = param_groups(model, options.lr, options.lr_head, options.weight_decay)
    transform = model.view_preprocess.wrap(transform)  # what the export records, so evaluation sees the same

    def make_stream(skip_batches: int, process_index: int, num_processes: int, workers: int) -> DataLoader:
        mine = shards[process_index::num_processes]
        if not mine:
            raise TrainError(f"{len(shards)} train shards cannot feed {num_processes} processes: release with "
                             "smaller --shard-samples or use fewer GPUs")
        dataset = PatentBatches(mine, options.batch_size, transform, tokenize, patents, locarno,
                                views_per_patent=options.views_per_patent, shuffle_patents=options.shuffle_patents,
                                seed=options.seed, skip_batches=skip_batches)
        return make_loader(dataset, workers)

    return TrainParts(model, groups, loss, after, make_stream, total, patents)


def build_deeppatent(deeppatent_dir: str, options: TrainOptions) -> TrainParts:
    """The ArcFace parts on a DeepPatent-layout folder: one sample per listed sheet, one class per patent."""
    if options.objective != "arcface":
        raise TrainError("a DeepPatent folder has no captions: train it with --objective arcface")
    sheets = read_train_list(deeppatent_dir)
    model, transform, _, loss, after = _arcface_parts(options, len(sheets.patents))
    groups = param_groups(model, options.lr, options.lr_head, options.weight_decay)
    transform = model.view_preprocess.wrap(transform)

    def make_stream(skip_batches: int, process_index: int, num_processes: int, workers: int) -> DataLoader:
        dataset = SheetBatches(sheets, options.batch_size, transform, options.seed, skip_batches, process_index,
                               num_processes)
        return make_sheet_loader(dataset, workers)

    return TrainParts(model, groups, loss, after, make_stream, len(sheets.rows), sheets.patents)
