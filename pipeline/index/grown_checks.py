"""What an append to a grown index refuses: another model, a release held already with other vectors, views held
under another release. Each message says what to do instead."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow as pa
from designclip.pipeline.index.driver import IndexOptions
from designclip.pipeline.index.faiss_index import IndexBuildError
from designclip.storage import layout
from designclip.storage.embeddings import embeddings_fingerprint
from designclip.storage.folder import DataFolder
from designclip.storage.grown_indexes import grown_models

NORMALISATION = "L2"  # every encoder returns unit rows (pipeline/embed/encoder.py); check_vectors enforces it


class AppendRefused(IndexBuildError):
    """The release cannot join this grown index as it is; the message says what to do."""


def encoder_identity(record: dict[str, Any], tag: str) -> dict[str, Any]:
    """What must match for vectors to share an index: the model (tag and weights), width and normalisation."""
    return {"model_tag": tag, "dim": int(record["dim"]), "weights_sha256": record.get("weights_sha256"),
            "has_text": record.get("has_text") is not False, "normalisation": NORMALISATION}


def fingerprint_of(folder: DataFolder, release: str, tag: str, options: IndexOptions) -> str:
    """The release's vectors by the model as the index took them (encoder record + shard stats of the splits)."""
    fingerprint = embeddings_fingerprint(folder, release, tag, tuple(options.splits))
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()


def _grown_dir(folder: DataFolder, name: str, tag: str) -> str:
    return folder.path(f"{layout.grown_index_root(name)}/{tag}")


def check_only_model(folder: DataFolder, name: str, tag: str) -> None:
    """One grown index holds one model's vectors: another model's would not be comparable."""
    others = [t for t in grown_models(folder, name) if t != tag]
    if others:
        raise AppendRefused(
            f"grown index {name!r} holds vectors of model {others[0]}, not {tag}: vectors of different models are "
            f"not comparable. Embed the release with {others[0]} (`designclip embed --release RELEASE --model "
            f"{others[0]}`) and append those, or grow another index for {tag} (`--into {name}-{tag}`)")


def check_model(card: dict[str, Any], identity: dict[str, Any], name: str, release: str) -> None:
    """The release's encoder must be the grown index's: same tag, weights, width and normalisation."""
    changed = [f"{k} {card.get(k)!r} -> {identity[k]!r}" for k in ("model_tag", "weights_sha256", "dim",
                                                                   "normalisation") if card.get(k) != identity[k]]
    if changed:
        tag = card.get("model_tag")
        raise AppendRefused(
            f"release {release} was embedded by another model than grown index {name!r} holds ({'; '.join(changed)})"
            f": its vectors would not be comparable. Re-embed release {release} with the index's model (`designclip "
            f"embed --release {release} --model {tag}`) and append again, or grow another index (`--into NAME`)")


def check_held_release(held: dict[str, Any], fingerprint: str, name: str, tag: str) -> None:
    """A release held already is a no-op when its vectors are the same; re-embedded since, it is refused."""
    if held["embeddings_fingerprint"] != fingerprint:
        raise AppendRefused(
            f"grown index {name!r} already holds release {held['release']} (ids {held['first_id']}.."
            f"{held['first_id'] + held['n'] - 1}), embedded differently than its vectors are now (re-embedded or "
            f"rebuilt since): appending it again would hold its views twice. To index the new vectors, delete "
            f"the grown index's folder for {tag} and append its releases again, in order")


def check_no_overlap(keys: pa.Table, release: str, new_keys: list[str], name: str) -> None:
    """Each view is held once: a release that repeats views of a release held already is refused."""
    held = dict(zip(keys.column("key").to_pylist(), keys.column("release").to_pylist(), strict=True))
    both = [k for k in new_keys if k in held]
    if both:
        releases = sorted({held[k] for k in both})
        raise AppendRefused(
            f"release {release} has {len(both)} views that grown index {name!r} holds already from release(s) "
            f"{', '.join(releases)} (e.g. {both[0]}): a grown index holds each view once. Append releases that do "
            f"not overlap (one per year), or index the combined release on its own (`designclip index --release "
            f"{release}`)")
