"""Which FIG.s each sheet of a patent holds, apart from where on the sheet they are, so sheets can be drawn one by one.

Placement is patent-wide but needs only the labels read on every sheet (cheap, in the parent process); the regions of
one sheet then follow from its placement and that sheet's own layout (ink masks, in the worker that decoded it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from designclip.pipeline.common.fallbacks import SHOWS_OTHER_LABELS
from designclip.pipeline.render.segment import Region, SheetLayout, split_sheet


@dataclass(frozen=True)
class SheetPlan:
    """What the patent-wide placement decided for one sheet; with the sheet's layout it fixes the sheet's regions."""

    mode: str  # "fallback": no FIG. list; "one": one FIG. per sheet; "placed": FIG.s placed by labels and order
    figs: tuple[str, ...] = ()  # the FIG.s on the sheet, in FIG. order
    labelled: tuple[str, ...] = ()  # those whose label was read on this sheet and on no other


def _place_unlabelled(figs: Sequence[str], found: dict[str, int], sheets: Sequence[int]) -> dict[str, int]:
    """Sheet of each FIG. whose label was not read, from the FIG. order (FIG.s run in order across sheets)."""
    placed = dict(found)
    labelled_sheets = set(found.values())
    used = set(placed.values())
    position: dict[int, int] = {}
    for j, s in enumerate(sheets):
        position.setdefault(s, j)
    # The first labelled sheet after each FIG. (suffix minimum), and the last sheet used before it (running maximum):
    # linear in FIG.s, so a 93-FIG., 67-sheet patent placed once per sheet stays cheap.
    after = [len(sheets) - 1] * (len(figs) + 1)
    for i in range(len(figs) - 1, -1, -1):
        after[i] = min(position[found[figs[i]]], after[i + 1]) if figs[i] in found else after[i + 1]
    before = 0
    for i, fig in enumerate(figs):
        if fig not in placed:
            candidates = [sheets[j] for j in range(before, max(before, after[i + 1]) + 1)]
            empty = [s for s in candidates if s not in labelled_sheets and s not in used]
            placed[fig] = empty[0] if empty else candidates[0]
            used.add(placed[fig])
        before = max(before, position[placed[fig]])
    return placed


def place_figs(figs: Sequence[str], sheets: Sequence[int], layouts: dict[int, SheetLayout]) -> dict[int, SheetPlan]:
    """Each sheet's FIG.s: from the labels read on every sheet (no pixels needed), each FIG. on exactly one sheet."""
    if not figs or not sheets:
        return {s: SheetPlan("fallback") for s in sheets}
    if len(figs) == len(sheets) and all(len({lb.fig for lb in layouts[s].labels}) <= 1 for s in sheets):
        # Every sheet holds at least one FIG., so equal counts mean one FIG. per sheet, in order (unless a sheet
        # shows two labels: then the XML's count and the drawings disagree, and the labels decide).
        return {s: SheetPlan("one", (fig,)) for fig, s in zip(figs, sheets, strict=True)}
    seen: dict[str, set[int]] = {}
    for s in sheets:
        for label in layouts[s].labels:
            seen.setdefault(label.fig, set()).add(s)
    # A label read on two sheets (one of them misread) places nothing: that FIG. goes by FIG. order, flagged.
    found = {fig: min(on) for fig, on in seen.items() if len(on) == 1}
    placed = _place_unlabelled(figs, found, sheets)
    plans = {}
    for s in sheets:
        on_sheet = tuple(f for f in figs if placed[f] == s)
        plans[s] = SheetPlan("placed", on_sheet, tuple(f for f in on_sheet if found.get(f) == s))
    return plans


def _one_fig(fig: str, sheet: int, layout: SheetLayout) -> Region:
    """Equal counts: the sheet holds this FIG.; a label that names another FIG. of the list flags the view."""
    own = layout.label_for(fig)
    others = sorted({lb.fig for lb in layout.labels if lb.fig != fig})
    flag = None
    if own is None and others:
        flag = f"the sheet's label reads FIG. {others[0]}, expected FIG. {fig}"
    return Region(fig, sheet, None, "sheet", flag, own.box if own else None, own.text if own else "",
                  layout.erase_boxes())


def sheet_regions(s: int, plan: SheetPlan, layout: SheetLayout) -> list[Region]:
    """The regions of sheet `s`, in FIG. order: whole sheet, or one box per FIG. cut between its labels."""
    erase = layout.erase_boxes()
    if plan.mode == "fallback":
        return [Region(None, s, None, "fallback", "no FIG. descriptions in the XML", erase=erase)]
    if plan.mode == "one":
        return [_one_fig(plan.figs[0], s, layout)]
    strays = layout.stray_figs()
    if not plan.figs:
        return [Region(None, s, None, "fallback", "no FIG. label read on this sheet", erase=erase, strays=strays)]
    labels = {f: layout.label_for(f) if f in plan.labelled else None for f in plan.figs}
    unlabelled = [f for f in plan.figs if labels[f] is None]
    others = [lb for lb in layout.labels + layout.strays if lb.fig not in plan.labelled]
    if len(plan.figs) == 1 and (unlabelled or not others):
        fig = plan.figs[0]
        own = labels[fig]
        flag = None
        if unlabelled:
            flag = "FIG. label not read; placed by FIG. order"
            flag += f"; {SHOWS_OTHER_LABELS}" if others else ""
        return [Region(fig, s, None, "fallback" if flag else "sheet", flag, own.box if own else None,
                       own.text if own else "", erase, strays)]
    split = None if unlabelled else split_sheet(layout, plan.figs, others)
    regions = []
    for f in plan.figs:
        own = labels[f]
        if split is not None:
            regions.append(Region(f, s, split.boxes[f], split.method, split.flag, own.box if own else None,
                                  own.text if own else "", erase, strays, split.hide.get(f)))
        else:
            reason = "FIG. label not read" if unlabelled else "regions could not be separated"
            regions.append(Region(f, s, None, "fallback", f"{reason}; whole sheet used", own.box if own else None,
                                  own.text if own else "", erase, strays))
    return regions


def plan_regions(figs: Sequence[str], sheets: Sequence[int],
                 analyse: Callable[[int], SheetLayout]) -> list[Region]:
    """Every FIG. of a patent with its sheet and box; each FIG. once, none dropped, front page excluded by caller."""
    layouts = {s: analyse(s) for s in sheets}
    plans = place_figs(figs, sheets, layouts)
    regions = [r for s in sheets for r in sheet_regions(s, plans[s], layouts[s])]
    order = {f: i for i, f in enumerate(figs)}
    return sorted(regions, key=lambda r: (order.get(r.fig, len(order)) if r.fig else len(order), r.sheet))
