"""The training data path: a release split as an endless, resumable stream of patent-grouped CLIP batches.

Order of work in each loader worker (everything before decoding runs on raw tar bytes, so a resume can replay it
cheaply): shards of epoch e in a permutation seeded by (seed, e), shard i to worker i % W -> samples (members of one
key) -> a cheap structural PNG check (CRCs, IEND; no pixel decoding) -> patent groups (adjacent samples with the same
json patent_id) -> patent shuffle buffer -> up to `views_per_patent` views per patent -> batches of exactly
`batch_size` raw samples -> [skip_batches dropped here, undecoded] -> PNG decode, transform, tokenize -> TrainBatch.

Batch packing: the sample stream is cut into batches in order; a patent whose views do not fit in what is left of
the batch is split, its first views closing this batch and the rest opening the next. Nothing is reordered or
delayed, so every sample of epoch e comes before any of epoch e+1 and the stream runs on across epochs without
padding or dropping a partial batch; at most one patent per batch boundary is split.

Use: iterate the loader once (`batches = iter(make_loader(ds, workers))`, then `next(batches)` per step); a second
`iter()` restarts the stream from its beginning (plus `skip_batches`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import random
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq
import torch
from designclip.pipeline.common.loader_workers import forget_parent_exit_hooks
from designclip.storage.folder import DataFolder
from designclip.storage.webdataset import tar_samples
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

log = logging.getLogger(__name__)

BUILD_HINT = "build one with `designclip release --version VERSION` (it writes releases/VERSION/)"
# What PIL raises for a damaged image: truncation, bad chunks/CRCs, bad deflate data, absurd sizes.
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)


@dataclass
class TrainBatch:
    """One training step's samples as tensors; labels are -1 where unknown so losses can mask them."""

    images: torch.Tensor
    texts: torch.Tensor
    cls: torch.Tensor
    locarno: torch.Tensor
    patent: torch.Tensor
    keys: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Rows in the batch (batch_size, one less per PNG that passed the check but failed to decode)."""
        return len(self.keys)

    def to(self, device: torch.device | str, non_blocking: bool = True) -> TrainBatch:
        """The same batch on `device` (non-blocking copies pair with the loader's pinned memory)."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> TrainBatch:
        """Called by DataLoader(pin_memory=True), which only pins tensors it can see."""
        return self._map(torch.Tensor.pin_memory)

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> TrainBatch:
        return TrainBatch(*(fn(getattr(self, name)) for name in _TENSOR_FIELDS), keys=list(self.keys))


_TENSOR_FIELDS = ("images", "texts", "cls", "locarno", "patent")


@dataclass(frozen=True)
class RawSample:
    """One sample as read from its shard: bytes and metadata, nothing decoded yet."""

    key: str
    png: bytes
    meta: dict[str, Any]
    text: str
    cls: int

    @property
    def patent_id(self) -> str:
        """The grouping key: a patent's views are adjacent in a release shard."""
        return str(self.meta.get("patent_id"))


def _release_folder(release_dir: str) -> DataFolder:
    return DataFolder(release_dir)


def split_shards(release_dir: str, split: str) -> tuple[list[str], int]:
    """Shard URLs of `split` in order and their sample total from sizes.json, so epochs are counted exactly."""
    folder = _release_folder(release_dir)
    rel = f"{split}/sizes.json"
    if not folder.exists(rel):
        raise FileNotFoundError(f"{release_dir}: no {rel}; is this a release folder? {BUILD_HINT}")
    sizes: dict[str, int] = folder.read_json(rel)
    total = sum(int(n) for n in sizes.values())
    if not sizes or total == 0:
        raise ValueError(f"{release_dir}: split {split!r} has no samples ({rel} is empty); {BUILD_HINT} "
                         "with ratios that give this split patents")
    base = release_dir.rstrip("/")
    return [f"{base}/{split}/{name}" for name in sorted(sizes)], total


def patent_index(release_dir: str, split: str = "train") -> dict[str, int]:
    """Patent id -> 0..n-1 over the split's sorted patent ids: ArcFace labels and the multi-view positives."""
    folder = _release_folder(release_dir)
    if not folder.exists("manifest.parquet"):
        raise FileNotFoundError(f"{release_dir}: no manifest.parquet; {BUILD_HINT}")
    with folder.open("manifest.parquet") as f:
        table = pq.read_table(f, columns=["split", "patent_id"])
    ids = sorted({p for s, p in zip(table.column("split").to_pylist(), table.column("patent_id").to_pylist(),
                                    strict=True) if s == split and p is not None})
    if not ids:
        raise ValueError(f"{release_dir}: the manifest has no {split!r} patents; {BUILD_HINT}")
    return {p: i for i, p in enumerate(ids)}


def locarno_index(release_dir: str) -> dict[str, int]:
    """Locarno class code ('07') -> 0..n-1 over classes.json's full sorted list (all 32 classes, not only those
    found in the data), so the head size and the indexes are the same for every release and split."""
    folder = _release_folder(release_dir)
    if not folder.exists("classes.json"):
        raise FileNotFoundError(f"{release_dir}: no classes.json; {BUILD_HINT}")
    codes = (folder.read_json("classes.json") or {}).get("locarno") or {}
    if not codes:
        raise ValueError(f"{release_dir}/classes.json has no Locarno class list; rebuild the release")
    return {code: i for i, code in enumerate(sorted(codes))}


def steps_per_epoch(total_samples: int, batch_size: int) -> int:
    """Batches that cover every sample once (rounded up: the stream runs on into the next epoch, nothing is lost)."""
    if total_samples < 1 or batch_size < 1:
        raise ValueError(f"steps_per_epoch needs positive sizes, got {total_samples} samples, batch {batch_size}")
    return math.ceil(total_samples / batch_size)


def _long(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


def _rng(*parts: object) -> random.Random:
    """A generator seeded by a readable string, the same in every process and Python run."""
    return random.Random("/".join(map(str, parts)))


def _seed(*parts: object) -> int:
    """A 63-bit seed for torch from readable parts."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


@contextlib.contextmanager
def _seeded_augmentation(seed: int) -> Iterator[None]:
    """Random transforms draw from torch's and Python's global generators: seed both for one batch, then put the
    caller's state back, so augmentations repeat on resume and the main process's generators are untouched."""
    state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            random.setstate(state)


def png_looks_whole(png: bytes) -> bool:
    """PIL's structural check (signature, chunk CRCs, IEND): catches truncated or damaged files for about 2% of
    the cost of decoding, which keeps skipped batches undecoded while still dropping the same samples."""
    try:
        with Image.open(io.BytesIO(png)) as img:
            img.verify()
    except IMAGE_ERRORS:
        return False
    return True


def decode_image(png: bytes) -> Image.Image:
    """A grayscale drawing as RGB, the gray replicated into 3 channels (what CLIP's image tower expects)."""
    with Image.open(io.BytesIO(png)) as img:
        img.load()
        return img.convert("RGB")


class PatentBatches(IterableDataset):
    """An endless stream of TrainBatch for DataLoader(batch_size=None); see the module docstring for the order."""

    def __init__(self, shards: list[str], batch_size: int, transform: Callable[[Image.Image], torch.Tensor],
                 tokenize: Callable[[list[str]], torch.Tensor], patents: dict[str, int],
                 locarno: dict[str, int] | None = None, views_per_patent: int = 2, shuffle_patents: int = 256,
                 seed: int = 0, skip_batches: int = 0) -> None:
        super().__init__()
        if not shards:
            raise ValueError(f"no shards to train on; {BUILD_HINT}")
        if batch_size < 1 or views_per_patent < 0 or skip_batches < 0:
            raise ValueError("batch_size must be positive, views_per_patent and skip_batches not negative")
        self.shards, self.batch_size = list(shards), batch_size
        self.transform, self.tokenize = transform, tokenize
        self.patents, self.locarno = patents, locarno or {}
        self.views_per_patent, self.shuffle_patents = views_per_patent, shuffle_patents
        self.seed, self.skip_batches = seed, skip_batches
        self.skipped_samples = 0  # occurrences dropped (per process: each loader worker counts its own)

    # -- raw stream (no decoding) ------------------------------------------------------------------------------
    def epoch_shards(self, epoch: int, worker: int, workers: int) -> list[str]:
        """This worker's shards of `epoch`: one permutation for all workers, shard i to worker i % workers."""
        order = list(self.shards)
        _rng(self.seed, epoch, "shards").shuffle(order)
        return order[worker::workers]

    def _skip(self, key: str, why: str) -> None:
        """A damaged sample costs one row, never the run: count it and name it in the log."""
        self.skipped_samples += 1
        log.warning("skipping training sample %s: %s (%d skipped so far in this process)", key, why,
                    self.skipped_samples)

    def _parse(self, key: str, members: dict[str, bytes], url: str) -> RawSample | None:
        """The sample if it has a whole PNG and readable json, cls and caption; else None (skipped and counted)."""
        missing = [ext for ext in ("png", "json", "txt") if ext not in members]
        if missing:
            self._skip(key, f"no {', '.join(missing)} member in {url}")
            return None
        if not png_looks_whole(members["png"]):
            self._skip(key, f"damaged PNG in {url}")
            return None
        try:
            meta = json.loads(members["json"])
            if not isinstance(meta, dict):
                raise ValueError("json is not an object")
            cls = int(members.get("cls", str(meta.get("cls", -1)).encode()).strip() or -1)
            return RawSample(key, members["png"], meta, members["txt"].decode("utf-8"), cls)
        except ValueError as err:  # bad json, utf-8 or int
            self._skip(key, f"unreadable json, cls or txt in {url} ({err})")
            return None

    def _raw_samples(self, shards: Iterable[str]) -> Iterator[RawSample]:
        """The usable samples of `shards` in order."""
        for url in shards:
            for key, members in tar_samples(url):
                sample = self._parse(key, members, url)
                if sample is not None:
                    yield sample

    @staticmethod
    def _patent_groups(samples: Iterable[RawSample]) -> Iterator[list[RawSample]]:
        """Adjacent samples with the same patent_id (the release writes a patent's views together)."""
        group: list[RawSample] = []
        for s in samples:
            if group and s.patent_id != group[0].patent_id:
                yield group
                group = []
            group.append(s)
        if group:
            yield group

    def _shuffled(self, groups: Iterable[list[RawSample]], rng: random.Random) -> Iterator[list[RawSample]]:
        """A shuffle buffer of `shuffle_patents` patents, drained at the end of the epoch (epochs never mix)."""
        if self.shuffle_patents <= 1:
            yield from groups
            return
        buffer: list[list[RawSample]] = []
        for group in groups:
            if len(buffer) < self.shuffle_patents:
                buffer.append(group)
                continue
            i = rng.randrange(len(buffer))
            yield buffer[i]
            buffer[i] = group
        rng.shuffle(buffer)
        yield from buffer

    def _views(self, group: list[RawSample], rng: random.Random) -> list[RawSample]:
        """Up to `views_per_patent` views picked by the seeded generator, kept in drawing order (0: all views)."""
        if self.views_per_patent == 0 or len(group) <= self.views_per_patent:
            return group
        return [group[i] for i in sorted(rng.sample(range(len(group)), self.views_per_patent))]

    def _epoch_samples(self, epoch: int, worker: int, workers: int) -> Iterator[RawSample]:
        """One epoch of this worker's samples in training order."""
        shuffle_rng = _rng(self.seed, epoch, worker, workers, "patents")
        views_rng = _rng(self.seed, epoch, worker, workers, "views")
        samples = self._raw_samples(self.epoch_shards(epoch, worker, workers))
        for group in self._shuffled(self._patent_groups(samples), shuffle_rng):
            yield from self._views(group, views_rng)

    def raw_batches(self, worker: int = 0, workers: int = 1) -> Iterator[list[RawSample]]:
        """This worker's endless batches of undecoded samples, cut in stream order across epoch boundaries."""
        batch: list[RawSample] = []
        epoch = 0
        while True:
            seen = 0
            for sample in self._epoch_samples(epoch, worker, workers):
                seen += 1
                batch.append(sample)
                if len(batch) == self.batch_size:
                    yield batch
                    batch = []
            if not seen:
                raise RuntimeError(f"loader worker {worker}/{workers}: its shards of epoch {epoch} hold no usable "
                                   f"sample: {self.epoch_shards(epoch, worker, workers)}")
            epoch += 1

    # -- decoding ----------------------------------------------------------------------------------------------
    def _decoded(self, batch: list[RawSample]) -> list[tuple[RawSample, Image.Image]]:
        """Decode a batch; a PNG that passed the structural check but still fails is dropped (the row count
        shrinks by one rather than pulling in a later sample, which would make resumed streams diverge)."""
        out = []
        for sample in batch:
            try:
                out.append((sample, decode_image(sample.png)))
            except IMAGE_ERRORS as err:
                self._skip(sample.key, f"PNG does not decode ({err})")
        return out

    def to_batch(self, batch: list[RawSample], aug_seed: int) -> TrainBatch:
        """Tensors for one raw batch; random transforms draw from a per-batch seed so a resume repeats them."""
        rows = self._decoded(batch)
        with _seeded_augmentation(aug_seed):
            images = [self.transform(img) for _, img in rows]
        samples = [s for s, _ in rows]
        return TrainBatch(
            images=torch.stack(images) if images else torch.empty(0),
            texts=self.tokenize([s.text for s in samples]),
            cls=_long([s.cls for s in samples]),
            locarno=_long([self.locarno.get(str(s.meta.get("locarno_class")), -1) for s in samples]),
            patent=_long([self.patents.get(s.patent_id, -1) for s in samples]),
            keys=[s.key for s in samples],
        )

    def worker_role(self, loader_worker: int, workers: int) -> int:
        """The uninterrupted stream's worker whose batches this loader worker continues: a resumed DataLoader starts
        its round-robin at worker 0, but the next global batch (skip_batches) came from worker skip_batches % W."""
        return (loader_worker + self.skip_batches) % workers

    def worker_skip(self, worker: int, workers: int) -> int:
        """Of the first skip_batches global batches (batch j from worker j % workers), how many are this worker's."""
        return len(range(worker, self.skip_batches, workers))

    def __iter__(self) -> Iterator[TrainBatch]:
        info = get_worker_info()
        loader_worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if workers > len(self.shards):
            raise ValueError(f"{workers} loader workers but {len(self.shards)} shards: a worker would get none; "
                             "use make_loader (it caps the workers) or fewer workers")
        worker = self.worker_role(loader_worker, workers)
        skip = self.worker_skip(worker, workers)
        for n, batch in enumerate(self.raw_batches(worker, workers)):
            if n >= skip:
                yield self.to_batch(batch, _seed(self.seed, workers, worker, n))


def make_loader(dataset: PatentBatches, workers: int) -> DataLoader:
    """The DataLoader for a PatentBatches stream: workers yield whole batches, at most one worker per shard."""
    workers = max(0, workers)
    if workers > len(dataset.shards):
        log.warning("%d loader workers for %d shards: using %d", workers, len(dataset.shards), len(dataset.shards))
        workers = len(dataset.shards)
    return DataLoader(dataset, batch_size=None, num_workers=workers, worker_init_fn=forget_parent_exit_hooks,
                      pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0)
