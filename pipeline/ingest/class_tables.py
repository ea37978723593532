"""Ship the class-title tables into the data root so they join with `patents/` (the ingest flow writes them once)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from designclip.pipeline.common.classes import locarno_class_titles, us_design_class_titles
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.schemas import LOCARNO_CLASSES, US_DESIGN_CLASSES


def write_class_tables(folder: DataFolder) -> None:
    """`classes/us_design_classes.parquet` (index = class id downstream) and `classes/locarno_classes.parquet`."""
    us = [{"uspc_class": c, "index": i, "title": t} for i, (c, t) in enumerate(us_design_class_titles().items())]
    loc = [{"locarno_class": c, "editions": "12-14", "title": t} for c, t in locarno_class_titles().items()]
    for name, rows, schema in (("us_design_classes", us, US_DESIGN_CLASSES), ("locarno_classes", loc, LOCARNO_CLASSES)):
        with folder.atomic_open(layout.class_table(name)) as f:
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), f)
