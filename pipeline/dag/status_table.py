"""The status dict (storage.status.collect_status) as aligned text or Markdown tables; pure formatting, no I/O."""

from __future__ import annotations

from typing import Any

from designclip.storage.vocabulary import human_bytes

Table = tuple[list[str], list[list[str]]]


def _num(value: Any) -> str:
    return "" if value is None else str(value)


def _cut(text: str | None, width: int | None) -> str:
    text = " ".join((text or "").split())  # one line: tracebacks and multi-line messages stay in the JSON
    if width is None or len(text) <= width:
        return text
    return text[: max(1, width - 1)] + "…"


def _is_number(cell: str) -> bool:
    return cell.replace(".", "", 1).replace("/", "", 1).isdigit()


def text_table(headers: list[str], rows: list[list[str]], indent: str = "") -> str:
    """Columns padded to their widest cell (numbers right-aligned), a dashed rule under the header."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if _is_number(c) else c.ljust(w) for c, w in zip(cells, widths, strict=True)]
        return (indent + "  ".join(parts)).rstrip()

    return "\n".join([line(headers), indent + "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), "|" + "---|" * len(headers), *(line(r) for r in rows)])


def _ingest_cell(ingest: dict[str, Any]) -> str:
    return f"{ingest['state']} ({ingest['note']})" if ingest["state"] == "partial" and ingest.get("note") else \
        ingest["state"]


def _render_cell(render: dict[str, Any]) -> str:
    if render["state"] == "partial":
        return f"partial {render['shards']} shards"
    return render["state"]


def _caption_cell(caption: dict[str, Any]) -> str:
    if caption["state"] == "missing":
        return "missing"
    total = "?" if caption["shards"] is None else caption["shards"]
    return f"{caption['state']} {caption['shards_done']}/{total}"


def week_table(status: dict[str, Any], error_width: int | None = 70) -> Table:
    """One row per week: ingest, render and each caption set's state with counts, and the week's last error."""
    sets = sorted(status.get("caption_sets") or {})
    headers = ["week", "ingest", "patents", "render", "views"]
    for name in sets:
        headers += [f"caption {name}", "captioned"]
    if not sets:
        headers.append("caption")
    headers.append("last error")
    rows = []
    for w in status["weeks"]:
        ingest, render = w["ingest"], w["render"]
        row = [w["week"], _ingest_cell(ingest), _num(ingest.get("patents")), _render_cell(render),
               _num(render["views"]) if render["state"] != "missing" else ""]
        for name in sets:
            caption = w["captions"][name]
            row += [_caption_cell(caption), _num(caption["captioned"]) if caption["state"] != "missing" else ""]
        if not sets:
            row.append("missing")
        row.append(_cut(w.get("last_error"), error_width))
        rows.append(row)
    return headers, rows


def release_table(status: dict[str, Any], error_width: int | None = 70) -> Table:
    """One row per release folder: samples (shards) per split, or the leftovers of a crashed build."""
    splits = ("train", "val", "test")
    headers = ["release", "state", *splits, "patents", "weeks", "finished / note"]
    rows = []
    for r in status["releases"]:
        if r["state"] == "done":
            cells = [f"{r['splits'].get(s, {}).get('samples', 0)} ({r['splits'].get(s, {}).get('shards', 0)} sh)"
                     for s in splits]
            rows.append([r["version"], "done", *cells, _num(r["patents"]), _num(r["weeks"]),
                         (r.get("finished_at") or "")[:19]])
        else:
            rows.append([r["version"], r["state"], "", "", "", "", "",
                         _cut(f"{r['files']} files, {r['shards']} shards; {r['error']}", error_width)])
    return headers, rows


def run_table(status: dict[str, Any]) -> Table:
    """One row per training run (or exported model folder): steps, finished, exported."""
    headers = ["run", "release", "state", "step", "finished", "model exported"]
    rows = []
    for r in status["runs"]:
        total = _num(r.get("total_steps")) or "?"
        step = f"{_num(r.get('step'))}/{total}" if r.get("step") is not None else ""
        if r["state"] == "partial" and r.get("checkpoint_step") is not None and r["checkpoint_step"] != r["step"]:
            step += f" (checkpoint {r['checkpoint_step']})"
        rows.append([r["run"], r.get("release") or "", r["state"], step, "yes" if r.get("finished") else "no",
                     "yes" if r.get("model_exported") else "no"])
    return headers, rows


def _embeddings_cell(e: dict[str, Any]) -> str:
    if e["state"] in ("missing", "n/a"):
        return "—" if e["state"] == "n/a" else "missing"
    cell = f"{e['state']} {e['shards_done']}/{e['shards_total']} shards"
    return cell + (f", {e['stale_shards']} stale" if e.get("stale_shards") else "")


def _index_cell(i: dict[str, Any] | None) -> str:
    if i is None:
        return "missing"
    if i["state"] != "done":
        return i["state"]
    recall = i.get("recall_at_10")
    mark = "" if i.get("met_target", True) else f" < {i.get('target_recall')}"
    return f"{i.get('factory')} r@10 {recall:.3f}{mark}" if recall is not None else str(i.get("factory"))


def output_table(status: dict[str, Any]) -> Table:
    """One row per release + model tag: embedded shards, the image/text indexes, the evaluation report."""
    names = sorted({n for o in status["outputs"] for n in o["indexes"]} | {"image", "text"})
    headers = ["release", "model", "embeddings", *(f"{n} index" for n in names), "report"]
    rows = []
    for o in status["outputs"]:
        report = o["report"]
        rep = f"done {(report.get('created_at') or '')[:10]}".strip() if report["state"] == "done" else report["state"]
        rep = "—" if rep == "n/a" else rep
        rows.append([o["release"], o["model_tag"], _embeddings_cell(o["embeddings"]),
                     *(_index_cell(o["indexes"].get(n)) for n in names), rep])
    return headers, rows


def deeppatent_table(status: dict[str, Any], width: int | None = 70) -> Table:
    """One row per DeepPatent rebuild: weeks built, listed sheets written, the training split, listed patents with
    rendered views (the per-FIG. variant), what is missing."""
    headers = ["rebuild", "weeks", "listed written", "train sheets", "train patents", "patents with views",
               "missing"]
    rows = [[d["name"], _num(d["weeks_built"]), f"{d['listed_written']}/{d['listed']}", _num(d["train_sheets"]),
             _num(d["train_patents"]), f"{d.get('view_patents', 0)}/{d.get('view_patents_listed', 0)}",
             _cut(d["missing"], width)] for d in status.get("deeppatent") or []]
    return headers, rows


def _summary_line(status: dict[str, Any]) -> str:
    parts = []
    for stage, counts in status.get("summary", {}).items():
        parts.append(f"{stage}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return "; ".join(parts)


def format_status(status: dict[str, Any], markdown: bool = False, error_width: int | None = 70) -> str:
    """The whole report: the stage x week table, then releases, training runs and per-model outputs."""
    table = markdown_table if markdown else text_table
    span = status.get("range") or {}
    where = f"{status['data_root']} (profile {status['profile']}"
    if span.get("start") or span.get("end"):
        where += f", weeks {span.get('start') or '…'} to {span.get('end') or '…'}"
    where += ")"
    head = "## " if markdown else ""
    out = [f"{head}Status of {where}", "", "From the done markers and failure records under the data root.", ""]
    sets = status.get("caption_sets") or {}
    if sets:
        out += ["Caption sets: " + "; ".join(f"{n} ({v.get('backend')}, {v.get('model_id')})" for n, v in
                                             sorted(sets.items())), ""]
    width = None if markdown else error_width
    sections = [("Weeks", week_table(status, width), "no weeks under the data root"),
                ("Releases", release_table(status, width), "no releases"),
                ("Training runs", run_table(status), "no training runs"),
                ("Embeddings, indexes, reports", output_table(status), "no embeddings, indexes or reports")]
    if status.get("deeppatent"):
        sections.append(("DeepPatent rebuilds", deeppatent_table(status, width), ""))
    for title, (headers, rows), empty in sections:
        out.append(f"### {title}" if markdown else f"{title}:")
        out += [table(headers, rows) if rows else f"  ({empty})", ""]
        if title == "Weeks" and rows:
            out += [f"Weeks by state: {_summary_line(status)}", ""]
    if status.get("disk"):
        out += [("### " if markdown else "") + "On disk: " + disk_line(status["disk"]), ""]
    return "\n".join(out).rstrip() + "\n"


def disk_line(disk: dict[str, int]) -> str:
    """`raw 0 B, images 12.3 MiB, ... (total 1.2 GiB)`: bytes per area of the data root (the optional DeepPatent
    rebuild only when there is one)."""
    parts = ", ".join(f"{area} {human_bytes(n)}" for area, n in disk.items() if n or area != "deeppatent")
    return f"{parts} (total {human_bytes(sum(disk.values()))})"
