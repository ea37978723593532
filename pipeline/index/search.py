"""Design search: encode a text or a drawing, query the FAISS index, rank patents (best view each) with metadata."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from designclip.pipeline.common.contact_sheet import caption_sheet
from designclip.pipeline.index.filters import SearchFilter, facet_counts
from PIL import Image

log = logging.getLogger(__name__)

MAX_K = 1000
MAX_QUERY_CHARS = 2000
OVERFETCH = 5  # views fetched per wanted patent before collapsing to the best view of each
MAX_FETCH = 16_384  # per-patent ranking and filters look no deeper: fewer matches among these views -> fewer hits
MAX_QUERY_PIXELS = 40_000_000  # a query drawing larger than this (read from its header) is refused undecoded
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
HIT_FIELDS = ("patent_id", "title", "fig", "view", "uspc_class", "locarno_class")


class SearchSetupError(RuntimeError):
    """Embeddings or index for this release and model are missing; the message names the command to run."""


class ImageTooLarge(ValueError):
    """A query drawing whose header declares more pixels than MAX_QUERY_PIXELS (refused before decoding)."""


@dataclass
class Hit:
    """One ranked result: the best-scoring view of a patent (or one view when not collapsing per patent)."""

    rank: int
    key: str
    patent_id: str
    title: str
    fig: str | None
    view: str | None
    uspc_class: str | None
    locarno_class: str | None
    score: float
    views: list[str] = field(default_factory=list)  # the patent's other matching views, best first
    grant_date: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RowLookup(Mapping[str, dict[str, Any]]):
    """Key -> metadata row of a column table (pyarrow Table or dict of lists) without one dict per row."""

    def __init__(self, columns: Mapping[str, list[Any]] | Any, key: str = "key") -> None:
        if hasattr(columns, "column_names"):  # a pyarrow Table
            columns = {name: columns.column(name).to_pylist() for name in columns.column_names}
        self._columns = {name: list(values) for name, values in columns.items() if name != key}
        self._row = {k: i for i, k in enumerate(columns[key])}

    def __getitem__(self, key: str) -> dict[str, Any]:
        i = self._row[key]
        return {name: values[i] for name, values in self._columns.items()}

    def __iter__(self) -> Iterator[str]:
        return iter(self._row)

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, key: object) -> bool:
        return key in self._row


def check_query(query: str) -> str:
    """A non-empty text of reasonable length (CLIP reads 77 tokens; a page of text is a mistake, not a query)."""
    text = " ".join(str(query or "").split())
    if not text:
        raise ValueError("empty query: describe the design, e.g. 'a chair with curved legs'")
    if len(text) > MAX_QUERY_CHARS:
        raise ValueError(f"query of {len(text)} characters: keep it under {MAX_QUERY_CHARS} (CLIP reads ~77 tokens)")
    return text


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= int(k) <= MAX_K:
        raise ValueError(f"k={k!r}: ask for 1 to {MAX_K} results")
    return int(k)


def check_pixels(size: tuple[int, int], max_pixels: int = MAX_QUERY_PIXELS) -> None:
    """Refuse a drawing whose declared size is over the limit (its pixels would cost ~4 bytes each to decode)."""
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLarge(f"drawing of {width}x{height} pixels ({width * height / 1e6:.0f} MP): the limit is "
                            f"{max_pixels / 1e6:.0f} MP; scale it down (a drawing sheet is ~3-10 MP)")


def load_query_image(image: Image.Image | bytes, max_pixels: int = MAX_QUERY_PIXELS) -> Image.Image:
    """A drawing as RGB (gray replicated, like the release views); undecodable bytes -> ValueError saying so, more
    than `max_pixels` -> ImageTooLarge from the header alone (nothing decoded)."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if not isinstance(image, bytes | bytearray | memoryview) or not len(image):
        raise ValueError("no image: upload a drawing (PNG, JPEG or TIFF)")
    try:
        with Image.open(io.BytesIO(bytes(image))) as img:
            check_pixels(img.size, max_pixels)
            img.load()
            return img.convert("RGB")
    except ImageTooLarge:
        raise
    except Image.DecompressionBombError as err:  # Pillow's own header check (over 2x its MAX_IMAGE_PIXELS)
        raise ImageTooLarge(f"{err}: the limit is {max_pixels / 1e6:.0f} MP; scale the drawing down") from err
    except _IMAGE_ERRORS as err:
        raise ValueError(f"could not read the image ({type(err).__name__}: {err}); upload a PNG, JPEG or TIFF "
                         "drawing") from err


def collapse(rows: list[tuple[float, str]], meta: Callable[[str], dict[str, Any]], k: int,
             per_patent: bool) -> list[Hit]:
    """Ranked hits from (score, key) rows sorted best first: the first view of each patent wins when per_patent."""
    hits: list[Hit] = []
    by_patent: dict[str, Hit] = {}
    for score, key in rows:
        m = meta(key)
        pid = str(m.get("patent_id") or key)
        if per_patent and pid in by_patent:
            by_patent[pid].views.append(key)
            continue
        if len(hits) >= k:
            if per_patent:
                continue  # still collect more views of patents already shown
            break
        hit = Hit(len(hits) + 1, key, pid, str(m.get("title") or ""), m.get("fig"), m.get("view"),
                  m.get("uspc_class"), m.get("locarno_class"), round(float(score), 6), grant_date=m.get("grant_date"))
        hits.append(hit)
        by_patent[pid] = hit
    return hits


def hit_label(hit: Hit) -> tuple[str, str]:
    """Contact-sheet caption of a hit: a headline (rank, patent, FIG.) and the details underneath."""
    head = f"#{hit.rank} {hit.patent_id} FIG. {hit.fig or '?'}"
    body = (f"score {hit.score:.3f} | {hit.view or 'view ?'} | class {hit.uspc_class or '?'} / "
            f"LOC {hit.locarno_class or '?'} | {hit.title}")
    return head, body


def hits_sheet(hits: list[Hit], png_by_key: Mapping[str, bytes] | Callable[[str], bytes], title: str = "",
               columns: int = 5) -> bytes:
    """Contact sheet (PNG) of the hits in rank order, each labelled; a view that cannot be read shows gray."""
    get = png_by_key if callable(png_by_key) else png_by_key.get
    items = []
    for hit in hits:
        try:
            png = get(hit.key) or b""
        except (KeyError, OSError, RuntimeError) as err:
            log.warning("contact sheet: no PNG for %s (%s)", hit.key, err)
            png = b""
        head, body = hit_label(hit)
        items.append((png, head, body))
    return caption_sheet(items, columns=columns, cell=200, title=title)


class Searcher:
    """Text and drawing search over one release's image index with one encoder (thread-safe)."""

    def __init__(self, encoder: Any, index: Any, keys_by_id: Mapping[int, str],
                 meta: Mapping[str, Mapping[str, Any]], card: Mapping[str, Any] | None = None,
                 catalog: Any = None) -> None:
        self.encoder, self.index, self.keys_by_id = encoder, index, keys_by_id
        self.meta, self.card, self.catalog = meta, dict(card or {}), catalog
        self._lock = threading.Lock()
        self._missing_meta: set[str] = set()
        self._facets: dict[str, Any] | None = None

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def _meta(self, key: str) -> dict[str, Any]:
        m = self.meta.get(key)
        if m is None:
            if key not in self._missing_meta:
                self._missing_meta.add(key)
                log.warning("search: %s is in the index but has no embedding metadata row; re-run "
                            "`designclip index` (the index is older than the embeddings)", key)
            return {"patent_id": key.split("_", 1)[0]}
        return dict(m)

    def _search(self, vector: np.ndarray, k: int, per_patent: bool, where: SearchFilter | None = None) -> list[Hit]:
        from designclip.pipeline.index.faiss_index import search_index

        k = check_k(k)
        total = self.size
        if total == 0:
            return []
        query = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        limit = min(total, max(MAX_FETCH, k))
        fetch = min(limit, k * OVERFETCH if per_patent or where else k)
        while True:
            with self._lock:
                scores, ids = search_index(self.index, query, fetch)
            rows = []
            for score, i in zip(scores[0], ids[0], strict=True):
                if i < 0:
                    continue
                key = self.keys_by_id.get(int(i))
                if key is None:
                    raise RuntimeError(f"index id {int(i)} has no key in ids.parquet: the index files disagree; "
                                       "rebuild it with `designclip index`")
                if where and not where.matches(self._meta(key)):
                    continue
                rows.append((float(score), key))
            hits = collapse(rows, self._meta, k, per_patent)
            if not (per_patent or where) or len(hits) >= k or fetch >= limit:
                return hits
            fetch = min(limit, fetch * 4)  # many views of few patents, or few pass the filter: look further down

    def search_text(self, query: str, k: int = 10, per_patent: bool = True,
                    where: SearchFilter | None = None) -> list[Hit]:
        """Patents whose drawings best match a description (text tower -> image index)."""
        text = check_query(query)
        check_k(k)
        if not getattr(self.encoder, "has_text", True):
            raise ValueError(f"{self.encoder.tag} is an image-only model (no text tower): search by drawing instead")
        with self._lock:
            vector = self.encoder.encode_texts([text])
        return self._search(vector, k, per_patent, where)

    def search_image(self, image: Image.Image | bytes, k: int = 10, per_patent: bool = True,
                     where: SearchFilter | None = None, max_pixels: int = MAX_QUERY_PIXELS) -> list[Hit]:
        """Patents whose drawings look most like this drawing (image tower -> image index)."""
        picture = load_query_image(image, max_pixels)
        check_k(k)
        with self._lock:
            vector = self.encoder.encode_images([picture])
        return self._search(vector, k, per_patent, where)

    def png(self, key: str) -> bytes:
        if self.catalog is None:
            raise RuntimeError("this searcher has no release catalog to read views from")
        return self.catalog.png(key)

    def hits_sheet(self, hits: list[Hit], title: str = "") -> bytes:
        """Contact sheet of the hits with their views read from the release."""
        return hits_sheet(hits, self.png, title)

    def facets(self) -> dict[str, Any]:
        """The filter values the index holds (US class, Locarno class, grant year, view) with view counts."""
        if self._facets is None:
            self._facets = facet_counts(self.meta.get(key) or {} for key in self.meta)
        return self._facets

    def describe(self) -> dict[str, Any]:
        """What is searched: model, index size and card (for the web page and logs)."""
        return {"model": getattr(self.encoder, "tag", None), "text": bool(getattr(self.encoder, "has_text", True)),
                "vectors": self.size, "card": self.card}


def check_release_exists(folder: Any, release: str) -> None:
    """An unknown release is named as such (not as missing embeddings), with the releases there are."""
    from designclip.storage import layout

    if folder.exists(layout.release_marker(release)):
        return
    there = [v for v in folder.ls_dirs("releases") if folder.exists(layout.release_marker(v))]
    listed = f"releases there: {', '.join(there)}" if there else "none yet: build one with `designclip release`"
    raise SearchSetupError(f"no release {release!r} under {folder.url}; {listed}")


def open_searcher(data_root: str, release: str, model: str, pretrained: str | None = None, kind: str = "image",
                  device: str | None = None) -> Searcher:
    """The searcher of `release` embedded and indexed with `model`; says which command to run when not."""
    from designclip.pipeline.embed.encoder import EncoderSpec, load_encoder, model_tag
    from designclip.storage import embeddings, indexes
    from designclip.storage.folder import DataFolder
    from designclip.storage.release_samples import ReleaseCatalog, read_embed_meta

    folder = DataFolder(data_root)
    spec = EncoderSpec(model, pretrained)
    tag = model_tag(spec)
    opts = f"--release {release} --model {model}" + (f" --pretrained {pretrained}" if pretrained else "")
    check_release_exists(folder, release)
    if embeddings.read_encoder_record(folder, release, tag) is None:
        raise SearchSetupError(f"release {release} has no embeddings by {tag}: run `designclip embed {opts}` "
                               f"then `designclip index {opts}`")
    try:
        loaded = indexes.read_index(folder, release, tag, kind)
    except indexes.IndexMissing as err:
        raise SearchSetupError(f"release {release} has embeddings by {tag} but no {kind} index: run "
                               f"`designclip index {opts}`") from err
    meta = RowLookup(with_grant_dates(folder, release, read_embed_meta(folder, release, tag, ("key", *HIT_FIELDS))))
    encoder = load_encoder(spec, data_root=data_root, device=device)
    catalog = ReleaseCatalog(folder, release)
    return Searcher(encoder, loaded.index, loaded.keys_by_id, meta, loaded.card, catalog)


def with_grant_dates(folder: Any, release: str, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The embedding metadata columns plus each view's grant date from the release manifest (for the year filter)."""
    from designclip.storage.release_samples import manifest_columns

    manifest = manifest_columns(folder, release, ("key", "grant_date"))
    dates = dict(zip(manifest["key"], manifest["grant_date"], strict=True))
    return {**columns, "grant_date": [dates.get(k) for k in columns["key"]]}
