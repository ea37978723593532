"""Search filters (US class, Locarno class, grant year, view) and the values a page can offer for each."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

FILTER_NAMES = ("uspc", "locarno", "year", "view")  # URL parameter names, in the order the page shows them
_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .,/_()-]{0,63}$")
_YEAR = re.compile(r"^(\d{4})")


def grant_year(grant_date: Any) -> int | None:
    """The year of a grant date (`2021-03-16` or a date); None when there is none."""
    m = _YEAR.match(str(grant_date or ""))
    return int(m.group(1)) if m else None


def _value(name: str, value: str | None) -> str | None:
    text = " ".join(str(value or "").split())
    if not text:
        return None
    if not _VALUE.match(text):
        raise ValueError(f"{name}={value!r}: not a value this filter takes (letters, digits, '-', '.', up to 64)")
    return text


@dataclass(frozen=True)
class SearchFilter:
    """Which views a search may return; None = any. Views are matched on the metadata of each hit."""

    uspc: str | None = None
    locarno: str | None = None
    year: int | None = None
    view: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str | None]) -> SearchFilter:
        """From URL parameters (`uspc=D2&locarno=02-04&year=2021&view=front view`); bad values -> ValueError."""
        year_text = _value("year", params.get("year"))
        year = None
        if year_text is not None:
            if not year_text.isdigit() or not 1800 <= int(year_text) <= 2999:
                raise ValueError(f"year={year_text!r}: give a grant year such as 2021")
            year = int(year_text)
        return cls(_value("uspc", params.get("uspc")), _value("locarno", params.get("locarno")), year,
                   _value("view", params.get("view")))

    def __bool__(self) -> bool:
        return any(v is not None for v in asdict(self).values())

    def matches(self, meta: Mapping[str, Any]) -> bool:
        """True when the view's metadata row passes every filter set."""
        if self.uspc is not None and (meta.get("uspc_class") or "") != self.uspc:
            return False
        if self.locarno is not None and (meta.get("locarno_class") or "") != self.locarno:
            return False
        if self.year is not None and grant_year(meta.get("grant_date")) != self.year:
            return False
        return self.view is None or (meta.get("view") or "").lower() == self.view.lower()

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def facet_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per filter, the values the index holds with their number of views (most common first, then by value)."""
    counts: dict[str, Counter] = {name: Counter() for name in FILTER_NAMES}
    for meta in rows:
        for name, value in (("uspc", meta.get("uspc_class")), ("locarno", meta.get("locarno_class")),
                            ("year", grant_year(meta.get("grant_date"))), ("view", meta.get("view"))):
            if value not in (None, ""):
                counts[name][value] += 1
    return {name: [{"value": v, "views": n} for v, n in sorted(c.items(), key=lambda vn: (-vn[1], str(vn[0])))]
            for name, c in counts.items()}
