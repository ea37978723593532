"""What the search page shows when a hit is opened: every view of the patent, its title, classes, claim, grant date
and a link to its public page on Google Patents."""

from __future__ import annotations

import re
import threading
from typing import Any

from designclip.storage.grown_indexes import qualified_key, split_key
from designclip.storage.release_samples import manifest_columns

_DESIGN_NUMBER = re.compile(r"^USD0*(\d{1,7})$")
PAGE_FIELDS = ("title", "claim", "grant_date", "uspc", "uspc_class", "uspc_further", "locarno", "locarno_class")


def public_url(patent_id: str, grant_date: str | None = None) -> str | None:
    """The patent's Google Patents page (`USD0909824` -> https://patents.google.com/patent/USD909824S1): kind S1
    for designs granted since 2001 (S before); None for an id that is not a US design patent number."""
    m = _DESIGN_NUMBER.match(str(patent_id or ""))
    if m is None:
        return None
    kind = "S" if grant_date and str(grant_date)[:4].isdigit() and int(str(grant_date)[:4]) < 2001 else "S1"
    return f"https://patents.google.com/patent/USD{int(m.group(1))}{kind}"


class PatentPages:
    """Patent pages of the views a catalog serves: a release's (`KEY`) or a grown index's (`RELEASE/KEY`)."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self.grown = hasattr(catalog, "releases")
        self._views: dict[str, dict[str, list[dict[str, Any]]]] = {}  # release -> patent -> its views
        self._lock = threading.Lock()

    def _release_views(self, release: str) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            if release not in self._views:
                cols = manifest_columns(self.catalog.folder, release, ("key", "patent_id", "fig", "view"))
                by_patent: dict[str, list[dict[str, Any]]] = {}
                for key, patent, fig, view in zip(cols["key"], cols["patent_id"], cols["fig"], cols["view"],
                                                  strict=True):
                    shown = qualified_key(release, key) if self.grown else key
                    by_patent.setdefault(patent, []).append({"key": shown, "fig": fig, "view": view})
                self._views[release] = by_patent
            return self._views[release]

    def page(self, key: str) -> dict[str, Any]:
        """The page of the patent that view `key` belongs to; KeyError when the catalog has no such view."""
        if key not in self.catalog:
            raise KeyError(key)
        release = split_key(key)[0] if self.grown else self.catalog.release
        meta = self.catalog.meta(key)
        patent = str(meta.get("patent_id") or "")
        views = self._release_views(release).get(patent) or [{"key": key, "fig": meta.get("fig"),
                                                               "view": meta.get("view")}]
        return {"patent_id": patent, "release": release, "key": key,
                **{name: meta.get(name) for name in PAGE_FIELDS},
                "views": sorted(views, key=_fig_order), "public_url": public_url(patent, meta.get("grant_date")),
                "public_site": "Google Patents"}


def _fig_order(view: dict[str, Any]) -> tuple[int, str]:
    """FIG. 1, 2, ... 10 in number order (FIG. 3A after 3), then anything unnumbered by its key."""
    m = re.match(r"^(\d+)", str(view.get("fig") or ""))
    return (int(m.group(1)) if m else 10**6, f"{view.get('fig') or ''}/{view['key']}")
