"""Explicit pyarrow schemas of the user-facing tables: extend them, never rename a column."""

from __future__ import annotations

import pyarrow as pa

PARTY = pa.struct(
    [
        ("name", pa.string()),
        ("city", pa.string()),
        ("state", pa.string()),
        ("country", pa.string()),
    ]
)
CITATION = pa.struct(
    [
        ("country", pa.string()),
        ("doc_number", pa.string()),
        ("kind", pa.string()),
        ("name", pa.string()),
        ("date", pa.string()),
        ("category", pa.string()),
    ]
)

PATENTS = pa.schema(
    [
        ("patent_id", pa.string()),
        ("doc_number", pa.string()),
        ("kind", pa.string()),
        ("grant_date", pa.date32()),
        ("application_number", pa.string()),
        ("application_date", pa.date32()),
        ("application_type", pa.string()),
        ("title", pa.string()),
        ("claim", pa.string()),
        ("locarno_edition", pa.int16()),
        ("locarno", pa.string()),
        ("locarno_class", pa.string()),
        ("uspc", pa.string()),
        ("uspc_class", pa.string()),
        ("uspc_further", pa.list_(pa.string())),
        ("num_sheets", pa.int16()),
        ("num_figures", pa.int16()),
        ("num_claims", pa.int16()),
        ("term_years", pa.int16()),
        ("dtd_version", pa.string()),
        ("inventors", pa.list_(PARTY)),
        ("applicants", pa.list_(PARTY)),
        ("assignees", pa.list_(PARTY)),
        ("primary_examiner", pa.string()),
        ("cited_patents", pa.list_(CITATION)),
        ("cited_other", pa.list_(pa.string())),
        ("broken_lines", pa.string()),
        ("drawing_statements", pa.list_(pa.string())),
        ("source_archive", pa.string()),
        ("source_member", pa.string()),
        ("week", pa.date32()),
    ]
)

FIGURES = pa.schema(
    [
        ("patent_id", pa.string()),
        ("fig", pa.string()),
        ("fig_index", pa.int16()),
        ("view", pa.string()),
        ("view_direction", pa.string()),
        ("view_type", pa.string()),
        ("description", pa.string()),
        ("week", pa.date32()),
        # Added with parser 2; null when none: a GUI image's place in its sequence (1, 2, 3 ...), the FIG. whose
        # view this FIG. took ("FIG. 2 is a second image thereof" -> "1"), why the row is doubtful.
        ("image_index", pa.int32()),
        ("view_inherited_from", pa.string()),
        ("figure_flag", pa.string()),
    ]
)

SHEETS = pa.schema(
    [
        ("patent_id", pa.string()),
        ("sheet", pa.int16()),
        ("file", pa.string()),
        ("orientation", pa.string()),
        ("width_px", pa.int32()),
        ("height_px", pa.int32()),
        ("width_mm", pa.float32()),
        ("height_mm", pa.float32()),
        ("image_path", pa.string()),
        ("image_offset", pa.int64()),
        ("image_size", pa.int64()),
        ("image_sha256", pa.string()),
        ("image_status", pa.string()),
        ("week", pa.date32()),
    ]
)

ERRORS = pa.schema(
    [
        ("week", pa.date32()),
        ("source_archive", pa.string()),
        ("member", pa.string()),
        ("patent_id", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)

US_DESIGN_CLASSES = pa.schema([("uspc_class", pa.string()), ("index", pa.int16()), ("title", pa.string())])
LOCARNO_CLASSES = pa.schema(
    [("locarno_class", pa.string()), ("editions", pa.string()), ("title", pa.string())]
)

TABLES: dict[str, pa.Schema] = {
    "patents": PATENTS,
    "figures": FIGURES,
    "sheets": SHEETS,
    "errors": ERRORS,
}
