"""USPC fixed-width codes, Locarno codes and the shipped class-title tables."""

from __future__ import annotations

import pytest
from designclip.pipeline.common.classes import (
    US_DESIGN_CLASSES,
    Uspc,
    locarno_class_titles,
    parse_locarno,
    parse_uspc,
    us_design_class_titles,
)


@pytest.mark.parametrize(
    ("code", "us_class", "subclass", "printed"),
    [
        ("D 7654", "D7", "654", "D7/654"),
        ("D28 47", "D28", "47", "D28/47"),
        ("D14486", "D14", "486", "D14/486"),
        ("D 5 32", "D5", "32", "D5/32"),
        (" D74012", "D7", "401.2", "D7/401.2"),  # further-classification with the class pad dropped
        (" D7653", "D7", "653", "D7/653"),
        ("D101194", "D10", "119.4", "D10/119.4"),
        ("D 74012", "D7", "401.2", "D7/401.2"),
        ("D 2973", "D2", "973", "D2/973"),
        ("D26 25", "D26", "25", "D26/25"),
        ("D99 29", "D99", "29", "D99/29"),
        ("D34 28", "D34", "28", "D34/28"),
        ("D 7642-647", "D7", "642-647", "D7/642-647"),  # unstructured range from field-of-search
        ("D99", "D99", "", "D99"),
    ],
)
def test_parse_uspc(code: str, us_class: str, subclass: str, printed: str) -> None:
    got = parse_uspc(code)
    assert got == Uspc(us_class, subclass)
    assert str(got) == printed


@pytest.mark.parametrize("code", ["", "   ", "D", "X123", "312/236", "Dxx123"])
def test_parse_uspc_rejects(code: str) -> None:
    assert parse_uspc(code) is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("0703", ("07-03", "07")),
        ("1404", ("14-04", "14")),
        ("2803", ("28-03", "28")),
        ("07-03", ("07-03", "07")),
        (" 0505 ", ("05-05", "05")),
        ("07", ("07", "07")),
    ],
)
def test_parse_locarno(code: str, expected: tuple[str, str]) -> None:
    assert parse_locarno(code) == expected


@pytest.mark.parametrize("code", ["", "7", "703", "070301"])
def test_parse_locarno_rejects(code: str) -> None:
    assert parse_locarno(code) is None


def test_us_design_classes_in_order() -> None:
    expected = [f"D{i}" for i in range(1, 31)] + ["D32", "D34", "D99"]
    assert list(US_DESIGN_CLASSES) == expected
    titles = us_design_class_titles()
    assert len(titles) == 33
    assert list(titles) == expected
    assert titles["D7"] == "Equipment for Preparing or Serving Food or Drink Not Elsewhere Specified"
    assert titles["D14"] == "Recording, Communication, or Information Retrieval Equipment"
    assert titles["D99"] == "Miscellaneous"
    assert all(t.strip() for t in titles.values())


def test_locarno_classes() -> None:
    titles = locarno_class_titles()
    assert len(titles) == 32
    assert list(titles) == [f"{i:02d}" for i in range(1, 33)]
    assert titles["07"] == "Household goods, not elsewhere specified"
    assert titles["14"] == "Recording, telecommunication or data processing equipment"
    assert all(t.strip() for t in titles.values())


def test_every_fixture_class_has_a_title() -> None:
    us = us_design_class_titles()
    loc = locarno_class_titles()
    for code in ["D 7654", "D28 47", "D14486", "D 5 32", "D12192", "D21335", "D26 25", "D24156", "D 2947"]:
        assert parse_uspc(code).us_class in us
    for code in ["0703", "2803", "1404", "2101", "0505", "0207", "2603", "2402", "2301"]:
        assert parse_locarno(code)[1] in loc
