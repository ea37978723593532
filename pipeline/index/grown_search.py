"""Search over a grown index (`designclip search --index NAME`): hits carry `RELEASE/KEY` keys; their metadata and
views come from the release each was appended from."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from designclip.pipeline.index.search import HIT_FIELDS, RowLookup, Searcher, SearchSetupError, with_grant_dates
from designclip.storage.folder import DataFolder
from designclip.storage.grown_indexes import qualified_key, split_key


class ReleasesMeta(Mapping[str, dict[str, Any]]):
    """`RELEASE/KEY` -> the view's metadata row, from each release's embedding metadata."""

    def __init__(self, lookups: Mapping[str, Mapping[str, dict[str, Any]]]) -> None:
        self._lookups = dict(lookups)

    def __getitem__(self, qualified: str) -> dict[str, Any]:
        try:
            release, key = split_key(qualified)
        except ValueError as err:
            raise KeyError(qualified) from err
        return self._lookups[release][key]

    def __iter__(self) -> Iterator[str]:
        return (qualified_key(r, k) for r, rows in self._lookups.items() for k in rows)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._lookups.values())


class ReleasesCatalog:
    """Views of `RELEASE/KEY` keys read from their release (each release's manifest loaded when first asked)."""

    def __init__(self, folder: DataFolder, releases: list[str], label: str) -> None:
        self.folder, self.releases, self.release = folder, list(releases), label
        self._catalogs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _catalog(self, release: str) -> Any:
        from designclip.storage.release_samples import ReleaseCatalog

        with self._lock:
            if release not in self._catalogs:
                self._catalogs[release] = ReleaseCatalog(self.folder, release)
            return self._catalogs[release]

    def __contains__(self, qualified: object) -> bool:
        try:
            release, key = split_key(str(qualified))
        except ValueError:
            return False
        return release in self.releases and key in self._catalog(release)

    def png(self, qualified: str) -> bytes:
        release, key = split_key(qualified)
        if release not in self.releases:
            raise KeyError(f"{qualified!r}: release {release} is not in {self.release}")
        return self._catalog(release).png(key)

    def meta(self, qualified: str) -> dict[str, Any]:
        """The view's sample json (title, claim, dates, classes) from its release."""
        release, key = split_key(qualified)
        if release not in self.releases:
            raise KeyError(f"{qualified!r}: release {release} is not in {self.release}")
        return self._catalog(release).meta(key)


def open_grown_searcher(data_root: str, name: str, model: str, pretrained: str | None = None, kind: str = "image",
                        device: str | None = None) -> Searcher:
    """The searcher of the grown index `name` (every release appended to it) with `model`; says what to run when
    it is missing or holds another model's vectors."""
    from designclip.pipeline.embed.encoder import EncoderSpec, load_encoder, model_tag
    from designclip.storage.grown_indexes import GrownIndexMissing, grown_models, read_grown_index
    from designclip.storage.release_samples import read_embed_meta

    folder = DataFolder(data_root)
    spec = EncoderSpec(model, pretrained)
    tag = model_tag(spec)
    held = grown_models(folder, name)
    if tag not in held:
        if held:
            raise SearchSetupError(f"grown index {name!r} holds vectors of model {held[0]}, not {tag}: search it with "
                                   f"`--model {held[0]}`")
        raise SearchSetupError(f"no grown index {name!r} under {data_root}: grow one with `designclip index --append "
                               f"--into {name} --release RELEASE --model {model}` (once per release)")
    try:
        loaded = read_grown_index(folder, name, tag, kind)
    except GrownIndexMissing as err:
        raise SearchSetupError(str(err)) from err
    releases = [r["release"] for r in loaded.card["releases"]]
    encoder = load_encoder(spec, data_root=data_root, device=device)
    weights = getattr(encoder, "info", {}).get("weights_sha256")
    if weights and loaded.card.get("weights_sha256") and weights != loaded.card["weights_sha256"]:
        raise SearchSetupError(f"model {model} (weights {weights[:12]}) is not the model whose vectors grown index "
                               f"{name!r} holds (weights {loaded.card['weights_sha256'][:12]}): give that model")
    columns = {r: with_grant_dates(folder, r, read_embed_meta(folder, r, tag, ("key", *HIT_FIELDS))) for r in releases}
    meta = ReleasesMeta({r: RowLookup(c) for r, c in columns.items()})
    catalog = ReleasesCatalog(folder, releases, f"@{name} ({', '.join(releases)})")
    return Searcher(encoder, loaded.index, loaded.keys_by_id, meta, loaded.card, catalog)


def open_any_searcher(data_root: str, release: str | None, index: str | None, model: str,
                      pretrained: str | None = None, device: str | None = None) -> Searcher:
    """The searcher of the release's own index, or of the grown index `index` (`--index NAME`); one of them."""
    from designclip.pipeline.index.search import open_searcher

    if bool(release) == bool(index):
        raise ValueError("give --release VERSION (its own index) or --index NAME (an index grown over several "
                         "releases by `designclip index --append --into NAME`), one of them")
    if index:
        return open_grown_searcher(data_root, index, model, pretrained, device=device)
    return open_searcher(data_root, str(release), model, pretrained, device=device)
