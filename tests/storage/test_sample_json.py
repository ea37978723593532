"""The sample json's one table: defaults for none, type coercion, clear errors, and the features derived from it."""

from __future__ import annotations

import pytest
from designclip.storage.sample_json import (
    BOOL,
    FIELDS,
    INT,
    INT_LIST,
    JOINED,
    STRING,
    STRING_LIST,
    SampleJsonError,
    card_features,
    hf_features,
    normalise_sample_json,
)

# What the render stage wrote before this table existed (USD0929296_f2, abridged): nulls where a value was missing.
OLD = {"key": "USD0929296_f2", "patent_id": "USD0929296", "fig": "2", "fig_index": 1, "view": "front",
       "view_direction": None, "view_type": None, "uspc_further": [], "flag": None, "flagged": False,
       "sheet_size": (2400, 3150), "cls": 11, "uspc_class": "D12", "grant_date": "2021-08-31"}

_PYTHON = {STRING: str, JOINED: str, INT: int, BOOL: bool, INT_LIST: list, STRING_LIST: list}


def test_every_field_is_present_with_its_one_type_and_none_becomes_the_default() -> None:
    meta = normalise_sample_json(OLD)
    assert list(meta) == [f.name for f in FIELDS]
    for f in FIELDS:
        assert type(meta[f.name]) is _PYTHON[f.kind], f.name
    assert (meta["view_direction"], meta["view_type"], meta["flag"], meta["label_box"]) == ("", "", "", [0, 0, 0, 0])
    assert meta["uspc_further"] == ""
    assert (meta["image_index"], meta["sheet"], meta["phash"], meta["dup_group"]) == (-1, -1, "", "")
    assert meta["sheet_size"] == [2400, 3150] and meta["fig_index"] == 1 and meta["cls"] == 11
    assert normalise_sample_json(meta) == meta  # idempotent: release time re-normalises render-time json


def test_values_are_coerced_to_the_declared_type() -> None:
    meta = normalise_sample_json({"key": "k", "fig": 3, "fig_index": "4", "sheet": 2.0, "flagged": 1,
                                  "uspc_further": ["D7/401.2", "D7/653"], "crop_box": ["1", 2, 3.0, 4]})
    assert (meta["fig"], meta["fig_index"], meta["sheet"], meta["flagged"]) == ("3", 4, 2, True)
    assert meta["uspc_further"] == "D7/401.2; D7/653"  # USD0909824's two further classes, as parse reads them
    assert meta["crop_box"] == [1, 2, 3, 4]


@pytest.mark.parametrize(("bad", "message"), [
    ({"colour": "red"}, r"sample USD0929296_f2: json field\(s\) 'colour' are not declared; add them to FIELDS"),
    ({"fig_index": "first"}, r"json field 'fig_index' = 'first' is not of type int"),
    ({"uspc_further": ["D12/92", 7]}, r"json field 'uspc_further' = \['D12/92', 7\] holds a non-string code"),
    ({"crop_box": 4}, r"json field 'crop_box' = 4 is not of type list\[int\]"),
    ({"flagged": "yes"}, r"json field 'flagged' = 'yes' is not of type bool"),
    ({"label_box": [1, None, 3, 4]}, r"'label_box' = \[1, None, 3, 4\] holds a null"),
    ({"title": {"en": "Wheel"}}, r"json field 'title' = \{'en': 'Wheel'\} is not of type string"),
])
def test_unknown_fields_and_wrong_types_raise_naming_the_sample_and_field(bad: dict, message: str) -> None:
    with pytest.raises(SampleJsonError, match=message):
        normalise_sample_json(OLD | bad)


def test_the_card_features_and_the_datasets_features_come_from_the_same_table() -> None:
    from datasets import Features, Image, List, Value

    features = hf_features()
    assert Features._from_yaml_list(card_features()) == features
    assert features["png"] == Image() and features["cls"] == Value("int64") and features["txt"] == Value("string")
    assert list(features["json"]) == [f.name for f in FIELDS]
    assert features["json"]["uspc_further"] == Value("string") and features["json"]["label_box"] == List(
        Value("int64"))
    assert features["json"]["flagged"] == Value("bool") and features["json"]["image_index"] == Value("int64")
