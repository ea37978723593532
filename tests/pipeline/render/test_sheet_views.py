"""A sheet as a unit of work: decoded once, drawn under its own guess, redrawn to the same bytes when the patent's
placement differs, and a patent assembled from sheets is the patent rendered whole."""

from __future__ import annotations

from dataclasses import replace

from designclip.pipeline.render import sheet_views
from designclip.pipeline.render.patent_views import RenderOptions, assemble, render_patent, sheet_jobs
from designclip.pipeline.render.placement import SheetPlan
from designclip.pipeline.render.sheet_views import draw_again, sheet_pass

from tests.fixtures.render import fixture_input

SMALL = RenderOptions(size=128)


def test_a_sheet_is_decoded_once_and_a_redraw_gives_the_same_bytes(monkeypatch):
    decodes: list[int] = []
    real = sheet_views.decode_sheet
    monkeypatch.setattr(sheet_views, "decode_sheet", lambda data, o: decodes.append(1) or real(data, o))
    job = sheet_jobs(fixture_input("USD0909824"), SMALL)[2]  # sheet 3 holds FIG. 4 to 7
    first = sheet_pass(job)
    assert len(decodes) == 1
    assert first.drawn.plan == SheetPlan("placed", ("4", "5", "6", "7"), ("4", "5", "6", "7"))
    assert [v.region.fig for v in first.drawn.views] == ["4", "5", "6", "7"]
    assert first.layout.ink is None and [lb.fig for lb in first.layout.labels] == ["4", "5", "6", "7"]
    again = draw_again(job, first.layout, first.drawn.plan)
    assert [v.png for v in again.views] == [v.png for v in first.drawn.views]
    assert [(v.box, v.phash256) for v in again.views] == [(v.box, v.phash256) for v in first.drawn.views]


def test_a_wrong_guess_is_redrawn_under_the_patents_placement():
    item = fixture_input("USD0909824")
    jobs = sheet_jobs(item, SMALL)
    passes = [sheet_pass(job) for job in jobs]
    wrong = replace(passes[0], drawn=replace(passes[0].drawn, plan=SheetPlan("placed", ("1",), ()), views=[]))
    redrawn: list[int] = []

    def redraw(redo):
        redrawn.extend(job.sheet for job, _, _ in redo)
        return [draw_again(*r) for r in redo]

    views = assemble(item, jobs, [wrong, *passes[1:]], 0.0, redraw)
    whole = render_patent(item, SMALL)
    assert redrawn == [1]
    assert [(s.key, s.png) for s in views.samples] == [(s.key, s.png) for s in whole.samples]
    assert [s.meta for s in views.samples] == [s.meta for s in whole.samples]


def test_an_unreadable_sheet_fails_once_and_each_of_its_views_fails():
    item = fixture_input("USD0929296")  # 2 sheets, 2 FIG.s
    item.images[2] = b"not a tiff"
    views = render_patent(item, SMALL)
    assert [(f.sheet, f.fig, f.reason) for f in views.failures] == [(2, None, "sheet_unreadable"),
                                                                    (2, "2", "sheet_unreadable")]
    assert "D00002" in views.failures[0].detail and [s.meta["fig"] for s in views.samples] == ["1"]
