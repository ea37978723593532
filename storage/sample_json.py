"""The stored format of a sample's `.json` member: one table of fields, each with one type and a "none" default.

Every writer (render) and reader (release, datasets, training) sees this one schema; it lives in storage because
the shards on disk hold it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STRING, INT, BOOL, INT_LIST, STRING_LIST = "string", "int", "bool", "list[int]", "list[string]"
# Codes joined by "; " in one string: `datasets` types a json list from the first 5 samples it reads, and a list that
# is [] in all of them becomes list<null>, which then fails on the first non-empty one. A list that is often empty
# (further classifications) is therefore text; a list filled in almost every view (boxes) stays a list.
JOINED = "string (codes joined by '; ')"
_DEFAULTS: dict[str, Any] = {STRING: "", JOINED: "", INT: -1, BOOL: False}
_HF_DTYPE = {STRING: "string", JOINED: "string", INT: "int64", BOOL: "bool", INT_LIST: "int64", STRING_LIST: "string"}


class SampleJsonError(ValueError):
    """A sample's json holds a field the table does not declare, or a value of the wrong type."""


@dataclass(frozen=True)
class JsonField:
    """One field of the json member: its name, its type and what it means (the dataset card lists it)."""

    name: str
    kind: str
    doc: str
    none: Any = None  # the value that means "none" when the kind's own default would not do

    def default(self) -> Any:
        if self.none is not None:
            return list(self.none) if isinstance(self.none, list) else self.none
        return [] if self.kind in (INT_LIST, STRING_LIST) else _DEFAULTS[self.kind]


FIELDS: tuple[JsonField, ...] = (
    JsonField("key", STRING, "the sample key (USD0915080_f1), also the tar member name"),
    JsonField("patent_id", STRING, "the patent (USD0915080)"),
    JsonField("fig", STRING, "the FIG. label ('1', '1.3'); '' for a sheet kept whole without a FIG."),
    JsonField("fig_index", INT, "the FIG.'s position in the patent's FIG. list (-1: none)"),
    JsonField("view", STRING, "normalised view ('front perspective'); '' when unknown"),
    JsonField("view_direction", STRING, "the direction part of the view ('front'); '' when none"),
    JsonField("view_type", STRING, "the kind of view ('perspective', 'enlarged'); '' when none"),
    JsonField("view_description", STRING, "the raw FIG. description from the grant text"),
    JsonField("view_inherited_from", STRING, "the FIG. whose view this FIG. took ('a second image thereof'); '' own"),
    JsonField("image_index", INT, "position of a GUI image in an 'image' sequence (-1: none)"),
    JsonField("figure_flag", STRING, "why the FIG.'s description or figure row is doubtful; '' when fine"),
    JsonField("title", STRING, "the design's title"),
    JsonField("claim", STRING, "the design's single claim"),
    JsonField("grant_date", STRING, "the grant date (ISO, 2021-04-06)"),
    JsonField("locarno", STRING, "Locarno (international) classification ('02-07')"),
    JsonField("locarno_class", STRING, "the Locarno class ('02')"),
    JsonField("uspc", STRING, "the main US design classification ('D11/231')"),
    JsonField("uspc_class", STRING, "the US design class ('D11'); '' when none"),
    JsonField("uspc_further", JOINED, "further US classifications ('D5/57; D6/374'); '' when none"),
    JsonField("cls", INT, "index of uspc_class in classes.json (0-32, -1: not one of the 33 classes)"),
    JsonField("sheet", INT, "the drawing sheet the view was cut from (1-based)"),
    JsonField("sheet_file", STRING, "that sheet's TIFF file name"),
    JsonField("orientation", STRING, "the sheet's orientation in the grant ('portrait', 'landscape')"),
    JsonField("sheet_size", INT_LIST, "[width, height] of the upright sheet in pixels"),
    JsonField("drawing_box", INT_LIST, "[x0, y0, x1, y1] of the FIG.'s ink on the upright sheet"),
    JsonField("crop_box", INT_LIST, "[x0, y0, x1, y1] cut from the upright sheet (drawing box plus margin)"),
    # Never []: `datasets` would type the list from a first few samples that all lack a label as list<null>.
    JsonField("label_box", INT_LIST, "[x0, y0, x1, y1] of the erased 'FIG. n' label on the upright sheet; "
              "[0, 0, 0, 0] when none was read", none=[0, 0, 0, 0]),
    JsonField("label_text", STRING, "the label text as read ('FIG. 3'); '' when none"),
    JsonField("segmentation", STRING, "how the view was cut out of its sheet"),
    JsonField("flagged", BOOL, "true when the view is uncertain (e.g. the whole sheet kept)"),
    JsonField("flag", STRING, "why the view is flagged; '' when not"),
    JsonField("phash", STRING, "64-bit perceptual hash of the view, 16 hex digits; '' when none"),
    JsonField("phash256", STRING, "256-bit perceptual hash of the view's ink box, 64 hex digits (confirms a near-"
              "duplicate the 64-bit one finds); '' when none"),
    JsonField("split", STRING, "the release split (train, val, test); equals the folder the shard is in"),
    JsonField("dup_group", STRING, "near-duplicate group of the patent (one split per group); '' when none"),
    JsonField("caption_metadata", STRING, "the caption made from metadata (title, view, class)"),
    JsonField("caption_source", STRING, "where `.txt` came from: 'metadata' or a caption set id"),
    JsonField("caption_error", STRING, "why a model caption is missing (`.txt` then holds the metadata caption)"),
    JsonField("caption_model", STRING, "the captioning model of `.txt`; '' for metadata captions"),
    JsonField("caption_prompt_version", STRING, "the prompt version of `.txt`; '' for metadata captions"),
    JsonField("renderer_version", STRING, "version of the render stage that made the PNG"),
    JsonField("segmenter_version", STRING, "version of the FIG. segmenter"),
)
BY_NAME = {f.name: f for f in FIELDS}


def _where(meta: dict[str, Any]) -> str:
    return f"sample {meta.get('key') or meta.get('patent_id') or '(no key)'}"


def _scalar(field: JsonField, value: Any, where: str) -> Any:
    """One value coerced to the field's type; None becomes the default; anything else that does not fit raises."""
    if value is None:
        return field.default()
    kind = STRING if field.kind in (STRING_LIST, JOINED) else INT if field.kind == INT_LIST else field.kind
    if kind == STRING and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if kind == INT and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    if kind == BOOL and (isinstance(value, bool) or value in (0, 1)):
        return bool(value)
    raise SampleJsonError(f"{where}: json field {field.name!r} = {value!r} is not of type {field.kind}; "
                          "fix the stage that wrote it (the types are declared in storage/sample_json.py)")


def _coerce(field: JsonField, value: Any, where: str) -> Any:
    if field.kind == JOINED and isinstance(value, list | tuple):  # the render stage passes the table's list
        if not all(isinstance(item, str) for item in value):
            raise SampleJsonError(f"{where}: json field {field.name!r} = {value!r} holds a non-string code")
        return "; ".join(item for item in value if item)
    if field.kind not in (INT_LIST, STRING_LIST) or value is None:
        return _scalar(field, value, where)
    if not isinstance(value, list | tuple):
        raise SampleJsonError(f"{where}: json field {field.name!r} = {value!r} is not of type {field.kind}; "
                              "fix the stage that wrote it (the types are declared in storage/sample_json.py)")
    if not value and field.none is not None:
        return field.default()
    if any(item is None for item in value):
        raise SampleJsonError(f"{where}: json field {field.name!r} = {value!r} holds a null; "
                              f"a {field.kind} holds only values ([] for none)")
    return [_scalar(field, item, where) for item in value]


def normalise_sample_json(meta: dict[str, Any]) -> dict[str, Any]:
    """Every declared field present with its one type (defaults for none); unknown fields raise."""
    where = _where(meta)
    unknown = sorted(set(meta) - BY_NAME.keys())
    if unknown:
        raise SampleJsonError(f"{where}: json field(s) {', '.join(map(repr, unknown))} are not declared; "
                              "add them to FIELDS in storage/sample_json.py (with a type and a default) so the "
                              "release's schema and dataset card stay complete")
    return {f.name: _coerce(f, meta.get(f.name), where) for f in FIELDS}


def card_features() -> list[dict[str, Any]]:
    """The `dataset_info.features` list of the dataset card (Hugging Face YAML form), from FIELDS."""
    struct = [{"name": f.name, "list" if f.kind in (INT_LIST, STRING_LIST) else "dtype": _HF_DTYPE[f.kind]}
              for f in FIELDS]
    return [
        {"name": "png", "dtype": "image"},
        {"name": "json", "struct": struct},
        {"name": "cls", "dtype": "int64"},
        {"name": "txt", "dtype": "string"},
        {"name": "__key__", "dtype": "string"},  # the webdataset builder adds the sample key and the shard's url
        {"name": "__url__", "dtype": "string"},
    ]


def hf_features() -> Any:
    """The same features as a `datasets.Features` (needs the `datasets` package: pip install datasets)."""
    try:
        from datasets import Features, Image, List, Value
    except ImportError as exc:
        raise ImportError("hf_features() needs Hugging Face datasets>=4: pip install 'datasets>=4'") from exc
    struct = {f.name: List(Value(_HF_DTYPE[f.kind])) if f.kind in (INT_LIST, STRING_LIST) else Value(_HF_DTYPE[f.kind])
              for f in FIELDS}
    return Features({"png": Image(), "json": struct, "cls": Value("int64"), "txt": Value("string"),
                     "__key__": Value("string"), "__url__": Value("string")})
