"""The pure release rules: options, split rules, version names, settings and what changed since."""

from __future__ import annotations

import pytest
from designclip.pipeline.common.splits import split_of
from designclip.pipeline.release.options import (
    ReleaseError,
    ReleaseOptions,
    check_version,
    fingerprint_changes,
    split_rule,
)


def test_hash_rule_is_the_render_split_and_deterministic() -> None:
    rule = split_rule(ReleaseOptions(ratios="90/5/5"), [2021])
    ids = [f"USD09{n:05d}" for n in range(2000)]
    assert [rule(i, 2021) for i in ids] == [split_of(i) for i in ids]
    counts = {s: sum(1 for i in ids if rule(i, None) == s) for s in ("train", "val", "test")}
    assert 1700 < counts["train"] < 1900 and counts["val"] > 50 and counts["test"] > 50
    assert split_rule(ReleaseOptions(ratios="0/0/1"), [2021])("USD0900000", 2021) == "test"


def test_year_rule_holds_out_the_latest_years() -> None:
    rule = split_rule(ReleaseOptions(split_by="year"), [2018, 2019, 2021, 2021])
    assert (rule.test_year, rule.val_year) == (2021, 2019)  # the latest year before the test year that has data
    assert [rule("USD1", y) for y in (2018, 2019, 2021)] == ["train", "val", "test"]
    explicit = split_rule(ReleaseOptions(split_by="year", test_year=2019, val_year=2018), [2018, 2019, 2021])
    assert [explicit("USD1", y) for y in (2018, 2019, 2021)] == ["val", "test", "train"]
    with pytest.raises(ReleaseError, match="leaves train empty"):
        split_rule(ReleaseOptions(split_by="year"), [2021])


@pytest.mark.parametrize(("options", "message"), [
    (ReleaseOptions(caption_source="../llava"), "caption_source '../llava': use 'metadata' or a caption set id"),
    (ReleaseOptions(split_by="random"), "split_by 'random'"),
    (ReleaseOptions(ratios="90/10"), "three non-negative numbers"),
    (ReleaseOptions(shard_samples=0), "must be positive"),
    (ReleaseOptions(test_year=2021), "only with split_by='year'"),
    (ReleaseOptions(split_by="year", test_year=2021, val_year=2021), "two different years"),
])
def test_bad_options_are_refused_with_a_clear_message(options: ReleaseOptions, message: str) -> None:
    with pytest.raises(ReleaseError, match=message):
        options.check()


def test_versions_name_folders_safely() -> None:
    assert check_version("v1.0-rc1") == "v1.0-rc1"
    for bad in ("", "../v1", "a/b", ".hidden", "v 1"):
        with pytest.raises(ReleaseError):
            check_version(bad)


def test_settings_record_only_what_applies() -> None:
    hashed = ReleaseOptions(years=(2021, 2020, 2021)).settings()
    assert hashed["years"] == [2020, 2021] and hashed["ratios"] == {"train": 0.9, "val": 0.05, "test": 0.05}
    assert "test_year" not in hashed
    by_year = ReleaseOptions(split_by="year", ratios="1/1/1").settings()
    assert "ratios" not in by_year and by_year["test_year"] is None


def test_fingerprint_changes_name_what_differs() -> None:
    old = {"settings": {"shard_samples": 10}, "inputs": [{"week": "2021-01-05", "sha256": "a"}]}
    new = {"settings": {"shard_samples": 20}, "inputs": [{"week": "2021-01-05", "sha256": "b"},
                                                         {"week": "2021-01-12", "sha256": "c"}]}
    assert fingerprint_changes(old, new) == ["shard_samples: 10 -> 20", "weeks added: 2021-01-12",
                                             "weeks re-rendered: 2021-01-05"]
