"""The index flows: a release's embeddings by one model -> FAISS indexes (image, text) with cards, after embed; and
`--append`: a release's vectors added to one index grown over several releases (indexes/@NAME/)."""

from __future__ import annotations

from typing import Any

from designclip.flows.step import Run, Step
from designclip.pipeline.index.append import DEFAULT_NAME
from designclip.pipeline.index.driver import IndexOptions, card_of, resolve_model_tag
from designclip.pipeline.index.inputs import KINDS
from designclip.storage import layout
from designclip.storage.embeddings import read_encoder_record
from designclip.storage.folder import DataFolder
from designclip.storage.grown_indexes import grown_card_markdown
from designclip.storage.indexes import card_markdown
from designclip.tasks.index import index_append_task, index_task
from designclip.tasks.progress import artifact_key
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact


def _model_of(data_root: str, release: str, model: str, pretrained: str | None,
              kinds: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """(model tag, encoder record) of the release's vectors; unknown kinds are refused first."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"index kinds {unknown}: use {', '.join(KINDS)}")
    tag = resolve_model_tag(data_root, release, model, pretrained)
    return tag, read_encoder_record(DataFolder(data_root), release, tag) or {}


def _not_built(kind: str, tag: str, record: dict[str, Any]) -> str | None:
    """Why an index of this kind cannot be built for the model (an image-only model has no text vectors)."""
    return f"{tag} is an image-only model (no text vectors)" if kind == "text" and record.get("has_text") is False \
        else None


@flow(name="index", log_prints=True)
def index_flow(
    release: str,
    model: str,
    pretrained: str | None = None,
    data_root: str = layout.DEFAULT_DATA_ROOT,
    kinds: tuple[str, ...] = ("image", "text"),
    splits: tuple[str, ...] = ("train", "val", "test"),
    memory_budget_gb: float = 8.0,
    target_recall: float = 0.95,
    latency_ms: float = 10.0,
) -> dict[str, Any]:
    """Build (or keep, when unchanged) one index per kind of vectors; an image-only model gets no text index.

    memory_budget_gb: GiB of RAM the index may take (decides Flat / HNSW / IVF-PQ); latency_ms: per-query target.
    """
    log = get_run_logger()
    tag, record = _model_of(data_root, release, model, pretrained, kinds)
    options = IndexOptions(tuple(splits), memory_budget_gb, target_recall, latency_ms)
    summary: dict[str, Any] = {"release": release, "model_tag": tag, "indexes": {}, "not_built": {}}
    for kind in kinds:
        if (why := _not_built(kind, tag, record)) is not None:
            summary["not_built"][kind] = why
            log.warning("no %s index: %s", kind, why)
            continue
        card = card_of(index_task(data_root, release, tag, kind, options))
        summary["indexes"][kind] = card
        state = "unchanged (kept)" if card.get("skipped") else "built"
        create_markdown_artifact(f"Index {state}: `{card['path']}`\n\n" + card_markdown(card),
                                 key=artifact_key("index", release, tag, kind), description=f"{kind} index card")
    return summary


@flow(name="index-append", log_prints=True)
def index_append_flow(
    release: str,
    model: str,
    into: str = DEFAULT_NAME,
    pretrained: str | None = None,
    data_root: str = layout.DEFAULT_DATA_ROOT,
    kinds: tuple[str, ...] = ("image", "text"),
    splits: tuple[str, ...] = ("train", "val", "test"),
    memory_budget_gb: float = 8.0,
    target_recall: float = 0.95,
    latency_ms: float = 10.0,
) -> dict[str, Any]:
    """Add a release's vectors (same model) to the grown index `into` without rebuilding it; the first release
    appended starts it. Recall is measured again over every release it holds; another model is refused."""
    log = get_run_logger()
    tag, record = _model_of(data_root, release, model, pretrained, kinds)
    options = IndexOptions(tuple(splits), memory_budget_gb, target_recall, latency_ms)
    summary: dict[str, Any] = {"release": release, "model_tag": tag, "into": into, "indexes": {}, "not_built": {}}
    for kind in kinds:
        if (why := _not_built(kind, tag, record)) is not None:
            summary["not_built"][kind] = why
            log.warning("no %s index: %s", kind, why)
            continue
        card = card_of(index_append_task(data_root, into, release, tag, kind, options))
        summary["indexes"][kind] = card
        state = f"already held release {release} (kept)" if card.get("skipped") else f"grown by release {release}"
        create_markdown_artifact(f"Grown index {state}: `{card['path']}`\n\n" + grown_card_markdown(card),
                                 key=artifact_key("index-append", into, tag, kind),
                                 description=f"grown {kind} index card")
    return summary


def _dag_call(r: Run) -> Any:
    """The DAG's index stage: the trained model's vectors of the release, then its indexes."""
    from designclip.flows.embed import embed_flow

    embedded = embed_flow.fn(release=r.release, model=r.run, data_root=r.data_root,
                             batch_size=r.profile.embed_batch_size)
    return {"embed": embedded, "index": index_flow.fn(release=r.release, model=r.run, data_root=r.data_root)}


def _dag_count(result: dict[str, Any]) -> tuple[int, int]:
    cards = list(result["index"]["indexes"].values())
    return (result["embed"]["shards"] + len(cards),
            result["embed"]["skipped"] + sum(1 for c in cards if c.get("skipped")))


STEP = Step(_dag_call, _dag_count,
            lambda r, res: r.folder.path(layout.index_model_dir(r.release, res["index"]["model_tag"])))
