"""Training from a DeepPatent-layout folder: one sample per listed sheet, one ArcFace class per patent.

Layout (what `designclip deeppatent build` writes): `DIR/lists/train_patent_trn.txt` with lines
"I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png LABEL" and the sheets under `DIR/images/`. The class
is the patent id of the path (its folder), numbered 0..n-1 over the sorted ids; the listed label is not trusted.

The stream is endless and resumable like the release stream: epoch e is a permutation seeded by (seed, e), cut into
batches in order across epoch boundaries; process p of P takes global batches p, p+P, ...; DataLoader worker w of W
takes that process's batches w, w+W, ... so the round-robin keeps their order, and `skip_batches` drops the first
batches without decoding them.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from designclip.pipeline.common.loader_workers import forget_parent_exit_hooks
from designclip.pipeline.train.data import IMAGE_ERRORS, TrainBatch, _seed, _seeded_augmentation
from designclip.pipeline.train.options import TrainError
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

log = logging.getLogger(__name__)

TRAIN_LIST = "lists/train_patent_trn.txt"
IMAGES = "images"
BUILD_HINT = "build the folder with `designclip deeppatent build --lists DIR` (it writes images/ and lists/)"


@dataclass(frozen=True)
class SheetList:
    """The training sheets of a DeepPatent folder: (relative path, class) rows and the patent -> class map."""

    root: Path
    rows: tuple[tuple[str, int], ...]
    patents: dict[str, int]
    sha256: str

    def record(self) -> dict[str, object]:
        """What a run records about its input (a changed list is another input)."""
        return {"deeppatent_dir": str(self.root), "train_list_sha256": self.sha256, "samples": len(self.rows),
                "patents": len(self.patents)}


def patent_of(path: str) -> str:
    """'I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png' -> 'USD0834581-20181127' (its folder)."""
    parts = path.split("/")
    if len(parts) >= 2:
        return parts[-2]
    return parts[-1].rsplit("-D", 1)[0]


def read_train_list(root: str | Path) -> SheetList:
    """The folder's training list; a missing list or sheet is an error that names it."""
    root = Path(root)
    listed = root / TRAIN_LIST
    if not listed.is_file():
        raise TrainError(f"{root}: no {TRAIN_LIST}; {BUILD_HINT}")
    text = listed.read_bytes()
    paths = [line.split()[0] for line in text.decode("utf-8").splitlines() if line.strip()]
    if not paths:
        raise TrainError(f"{listed} lists no sheets; {BUILD_HINT}")
    missing = [p for p in paths if not (root / IMAGES / p).is_file()]
    if missing:
        raise TrainError(f"{len(missing)} of {len(paths)} listed sheets are not under {root / IMAGES} "
                         f"(e.g. {', '.join(missing[:3])}); rerun the build for their weeks or drop them from the list")
    patents = {p: i for i, p in enumerate(sorted({patent_of(p) for p in paths}))}
    rows = tuple((p, patents[patent_of(p)]) for p in paths)
    return SheetList(root, rows, patents, hashlib.sha256(text).hexdigest())


class SheetBatches(IterableDataset):
    """Endless TrainBatch stream of DeepPatent sheets (labels in `patent`; no texts, US class or Locarno)."""

    def __init__(self, sheets: SheetList, batch_size: int, transform: Callable[[Image.Image], torch.Tensor],
                 seed: int = 0, skip_batches: int = 0, process_index: int = 0, num_processes: int = 1) -> None:
        super().__init__()
        if batch_size < 1 or skip_batches < 0:
            raise ValueError("batch_size must be positive and skip_batches not negative")
        self.sheets, self.batch_size, self.transform = sheets, batch_size, transform
        self.seed, self.skip_batches = seed, skip_batches
        self.process_index, self.num_processes = process_index, num_processes

    def global_batches(self) -> Iterator[list[tuple[str, int]]]:
        """Every process's batches in order: seeded epoch permutations cut across epoch boundaries."""
        batch: list[tuple[str, int]] = []
        epoch = 0
        while True:
            order = list(self.sheets.rows)
            random.Random(f"{self.seed}/{epoch}/sheets").shuffle(order)
            for row in order:
                batch.append(row)
                if len(batch) == self.batch_size:
                    yield batch
                    batch = []
            epoch += 1

    def local_batches(self) -> Iterator[tuple[int, list[tuple[str, int]]]]:
        """(this process's step, batch): global batches p, p+P, ..."""
        for g, batch in enumerate(self.global_batches()):
            if g % self.num_processes == self.process_index:
                yield g // self.num_processes, batch

    def _load(self, rel: str) -> Image.Image | None:
        try:
            with Image.open(self.sheets.root / IMAGES / rel) as img:
                img.load()
                return img.convert("L")
        except IMAGE_ERRORS as err:
            log.warning("skipping training sheet %s: %s", rel, err)
            return None

    def to_batch(self, batch: list[tuple[str, int]], aug_seed: int) -> TrainBatch:
        """Decode and transform one batch (augmentation seeded per batch, so a resume repeats it)."""
        rows = [(rel, label, img) for rel, label in batch if (img := self._load(rel)) is not None]
        with _seeded_augmentation(aug_seed):
            images = [self.transform(img) for _, _, img in rows]
        n = len(rows)
        return TrainBatch(images=torch.stack(images) if images else torch.empty(0),
                          texts=torch.zeros(n, 1, dtype=torch.long), cls=torch.full((n,), -1, dtype=torch.long),
                          locarno=torch.full((n,), -1, dtype=torch.long),
                          patent=torch.tensor([label for _, label, _ in rows], dtype=torch.long),
                          keys=[rel for rel, _, _ in rows])

    def __iter__(self) -> Iterator[TrainBatch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for step, batch in self.local_batches():
            if step < self.skip_batches or (step - self.skip_batches) % workers != worker:
                continue
            yield self.to_batch(batch, _seed(self.seed, self.process_index, step))


def make_sheet_loader(dataset: SheetBatches, workers: int) -> DataLoader:
    """DataLoader over whole batches (workers take turns, so batches arrive in step order)."""
    workers = max(0, workers)
    return DataLoader(dataset, batch_size=None, num_workers=workers, worker_init_fn=forget_parent_exit_hooks,
                      pin_memory=torch.cuda.is_available(),
                      persistent_workers=workers > 0)
