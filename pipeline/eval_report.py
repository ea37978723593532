"""Evaluation reports people read: Markdown tables of one model, models side by side, recall and confusion plots.

Every function takes the JSON report of `pipeline.evaluate.evaluate_vectors` (plus the `model`/`release`
entries the evaluate task adds), so a report read back from report.json renders the same as a fresh one.
Numbers are percentages with two decimals, like the DesignCLIP and DeepPatent tables; '–' = not measured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pipeline.plots import confusion_matrix_plot, recall_curves

DASH = "–"
DEEPPATENT_COLUMNS = ("1", "5", "10", "20", "50", "100")


def pct(value: float | None) -> str:
    """0.12345 -> '12.35'; None -> '–'."""
    return DASH if value is None else f"{100.0 * value:.2f}"


def _get(report: dict[str, Any], *path: str) -> Any:
    node: Any = report
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def model_label(report: dict[str, Any]) -> str:
    """The model's tag, marked '(ours)' or '(baseline)' when the flow said which."""
    model = report.get("model") or {}
    tag = model.get("tag") or "model"
    role = model.get("role")
    return f"{tag} ({role})" if role else tag


def _table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *["| " + " | ".join(r) + " |" for r in rows]]


def _left_out_text(left: dict[str, int] | None) -> str:
    items = [f"{n} {reason}" for reason, n in (left or {}).items() if n]
    return ", ".join(items) if items else "none"


# --------------------------------------------------------------------------------------------------- one model


def _retrieval_rows(ret: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, part in (("all test views", ret.get("all")), ("5k pairs", ret.get("sample"))):
        if not part:
            continue
        label = name
        if name == "5k pairs":
            label = f"{part['pairs']} sampled pairs (seed {part['seed']})" if part.get("sampled") \
                else f"min(5000, n) = all {part['pairs']} pairs"
        rows.append([label, str(part["pairs"]),
                     *[pct(part["text_to_image"].get(k)) for k in ("1", "5", "10")],
                     *[pct(part["image_to_text"].get(k)) for k in ("1", "5", "10")]])
    return rows


def _method_cell(method: dict[str, Any] | None) -> tuple[str, str, str]:
    """(accuracy, evaluated, left out / note) of one classification method."""
    if not method:
        return DASH, DASH, ""
    if "skipped" in method:
        return DASH, DASH, method["skipped"]
    note = f"left out: {_left_out_text(method.get('left_out'))}"
    if method.get("c") is not None:
        note += f"; C = {method['c']:g}, {method['train_rows']} train views"
        if method.get("train_sampled"):
            note += f" (seeded sample of {method['train_labelled']})"
    if method.get("unseen_test_classes"):
        note += f"; classes not in train (always wrong): {', '.join(method['unseen_test_classes'])}"
    return pct(method.get("accuracy")), str(method.get("evaluated", DASH)), note


def _per_class_lines(section: dict[str, Any]) -> list[str]:
    rows = [r for r in section.get("per_class", []) if r.get("support")]
    if not rows:
        return ["No test view has a known class here."]
    empty = sum(1 for r in section.get("per_class", []) if not r.get("support"))
    lines = _table(["Class", "Title", "Test views", "Zero-shot (%)", "Linear probe (%)"],
                   [[r["code"], r.get("title") or "", str(r["support"]), pct(r.get("zero_shot")),
                     pct(r.get("linear_probe"))] for r in rows])
    if empty:
        lines += ["", f"{empty} classes have no test view and are not listed."]
    return lines


def _deeppatent_lines(dp: dict[str, Any]) -> list[str]:
    rows = []
    for vpq, part in sorted((dp.get("views_per_query") or {}).items()):
        if "skipped" in part:
            rows.append([vpq, str(part.get("queries", 0)), str(part.get("database", 0)), DASH,
                         *[DASH for _ in DEEPPATENT_COLUMNS], part["skipped"]])
            continue
        note = f"{part['patents']} patents, {part['distractor_patents']} single-view (database only)"
        if part.get("skipped_queries"):
            note += f"; {part['skipped_queries']} queries without a relevant view"
        clipped = [k for k in DEEPPATENT_COLUMNS if (part.get("k_used") or {}).get(k, int(k)) < int(k)]
        if clipped:
            note += f"; k > database ({part['database']}) clipped for top-{','.join(clipped)}"
        rows.append([vpq, str(part["queries"]), str(part["database"]), pct(part.get("mAP")),
                     *[pct(part["top_k"].get(k)) for k in DEEPPATENT_COLUMNS], note])
    return _table(["Views / query", "Queries", "Database", "mAP (%)", *[f"Top-{k} (%)" for k in DEEPPATENT_COLUMNS],
                   "Notes"], rows)


def _lists_lines(lists: dict[str, Any]) -> list[str]:
    return [f"Query list `{lists['query_list']}`, database list `{lists['db_list']}`, images under "
            f"`{lists['image_root']}`: {lists['queries']} queries, {lists['database']} database images, "
            f"{lists['patents']} patents ({lists['skipped_queries']} queries without a relevant image).", "",
            *_table(["mAP (%)", *[f"Top-{k} (%)" for k in DEEPPATENT_COLUMNS]],
                    [[pct(lists.get("mAP")), *[pct(lists["top_k"].get(k)) for k in DEEPPATENT_COLUMNS]]])]


def report_markdown(report: dict[str, Any], images: Sequence[str] = ()) -> str:
    """One model's report: counts, retrieval, classification (+ per class), DeepPatent; `images` linked at the end."""
    model = report.get("model") or {}
    release = _get(report, "release", "version") or report.get("release") or "?"
    lines = [f"# Evaluation of `{model.get('tag', 'model')}` on release `{release}`", ""]
    if model:
        spec = model.get("spec") or {}
        pre = f", pretrained `{spec['pretrained']}`" if spec.get("pretrained") else ""
        lines += [f"Model `{spec.get('model', model.get('tag'))}`{pre} ({model.get('init', '?')}, "
                  f"{model.get('dim', '?')}-d, weights sha256 {str(model.get('weights_sha256', ''))[:12]}); "
                  f"seed {report.get('seed', 0)}.", ""]
    counts = report.get("counts") or {}
    for split in ("test", "train"):
        c = counts.get(split)
        if c:
            lines.append(f"- {split} split: {c['rows']} views of {c['patents']} patents, {c['image_ok']} with a "
                         f"readable image; problems: {_left_out_text(c.get('problems'))}")
    lines.append("")

    ret = report.get("retrieval") or {}
    lines += ["## Retrieval (test split)", ""]
    if "all" in ret:
        lines += [ret.get("protocol", ""), "",
                  *_table(["Pairs", "n", "T→I R@1", "T→I R@5", "T→I R@10", "I→T R@1", "I→T R@5", "I→T R@10"],
                          _retrieval_rows(ret)),
                  "", f"Left out of retrieval: {_left_out_text(ret.get('left_out'))}. Median rank of the pair "
                  f"(all views): text→image {ret['all']['median_rank']['text_to_image']:g}, image→text "
                  f"{ret['all']['median_rank']['image_to_text']:g}.", ""]
    else:
        lines += [f"Not measured: {ret.get('skipped', 'no retrieval section')}.", ""]

    lines += ["## Classification (test split, accuracy %)", ""]
    rows = []
    for key in ("us", "locarno"):
        section = _get(report, "classification", key) or {}
        for method, name in (("zero_shot", "zero-shot"), ("linear_probe", "linear probe (train → test)")):
            acc, n, note = _method_cell(section.get(method))
            rows.append([f"{section.get('name', key)} ({section.get('classes', '?')})", name, acc, n, note])
    lines += [*_table(["Classes", "Method", "Accuracy (%)", "Evaluated", "Notes"], rows), ""]
    unmatched = _get(report, "classification", "locarno", "unmatched_codes")
    if unmatched:
        lines += [f"Locarno codes not in the title list (left out): "
                  f"{', '.join(f'{c} ({n})' for c, n in sorted(unmatched.items()))}", ""]
    for key, title in (("us", "US design classes"), ("locarno", "Locarno classes")):
        section = _get(report, "classification", key)
        if section:
            lines += [f"### Per-class accuracy: {title}", "", *_per_class_lines(section), ""]

    dp = report.get("deeppatent") or {}
    lines += ["## DeepPatent protocol (test split)", "", dp.get("protocol", ""), "", *_deeppatent_lines(dp), ""]
    if report.get("deeppatent_lists"):
        lines += ["## DeepPatent test lists", "", *_lists_lines(report["deeppatent_lists"]), ""]
    if images:
        lines += ["## Plots", "", *[f"![{name}]({name})" for name in images], ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- comparison


def _bold_best(rows: list[list[str]], columns: Sequence[int]) -> list[list[str]]:
    """Bold the highest number in each of `columns` (every tie bolded; '–' never)."""
    for col in columns:
        values = [float(r[col]) for r in rows if r[col] != DASH]
        if not values:
            continue
        best = max(values)
        for r in rows:
            if r[col] != DASH and float(r[col]) == best:
                r[col] = f"**{r[col]}**"
    return rows


def _comparison_table(reports: list[dict[str, Any]], header: Sequence[str],
                      cells: Callable[[dict[str, Any]], list[str]]) -> list[str]:
    rows = [[model_label(r), *cells(r)] for r in reports]
    return _table(["Model", *header], _bold_best(rows, range(1, len(header) + 1)))


def _retrieval_cells(part: dict[str, Any] | None) -> list[str]:
    if not part:
        return [DASH] * 6
    return [*[pct(part["text_to_image"].get(k)) for k in ("1", "5", "10")],
            *[pct(part["image_to_text"].get(k)) for k in ("1", "5", "10")]]


def _dp_cells(report: dict[str, Any], vpq: str) -> list[str]:
    part = _get(report, "deeppatent", "views_per_query", vpq)
    if not part or "skipped" in part:
        return [DASH] * (1 + len(DEEPPATENT_COLUMNS))
    return [pct(part.get("mAP")), *[pct(part["top_k"].get(k)) for k in DEEPPATENT_COLUMNS]]


def comparison_markdown(reports: list[dict[str, Any]]) -> str:
    """Models side by side like the paper's tables: one row per model, one column per metric, best in bold."""
    if not reports:
        raise ValueError("no reports to compare")
    releases = sorted({str(_get(r, "release", "version") or r.get("release") or "?") for r in reports})
    lines = [f"# Model comparison on release {', '.join(f'`{v}`' for v in releases)}", "",
             "Percentages; the best value of each column is in bold. First model = ours, the others baselines.", ""]
    if len(releases) > 1:
        lines += ["**Warning: the reports are of different releases; the numbers are not comparable.**", ""]
    recall = ["T→I R@1", "T→I R@5", "T→I R@10", "I→T R@1", "I→T R@5", "I→T R@10"]
    pairs = sorted({_get(r, "retrieval", "pairs") for r in reports}, key=str)
    lines += [f"## Retrieval, all test views (pairs: {', '.join(map(str, pairs))})", "",
              *_comparison_table(reports, recall, lambda r: _retrieval_cells(_get(r, "retrieval", "all"))), ""]
    sample = sorted({_get(r, "retrieval", "sample", "pairs") for r in reports}, key=str)
    lines += [f"## Retrieval, 5k-pair variant (pairs: {', '.join(map(str, sample))})", "",
              *_comparison_table(reports, recall, lambda r: _retrieval_cells(_get(r, "retrieval", "sample"))), ""]

    def cls_cells(r: dict[str, Any]) -> list[str]:
        return [pct(_get(r, "classification", system, method, "accuracy"))
                for system in ("us", "locarno") for method in ("zero_shot", "linear_probe")]

    lines += ["## Classification accuracy (test split)", "",
              *_comparison_table(reports, ["US zero-shot", "US linear probe", "Locarno zero-shot",
                                           "Locarno linear probe"], cls_cells), ""]
    for vpq in ("1", "2"):
        queries = sorted({_get(r, "deeppatent", "views_per_query", vpq, "queries") for r in reports}, key=str)
        lines += [f"## DeepPatent protocol, {vpq} view(s) per query (queries: {', '.join(map(str, queries))})", "",
                  *_comparison_table(reports, ["mAP", *[f"Top-{k}" for k in DEEPPATENT_COLUMNS]],
                                     lambda r, v=vpq: _dp_cells(r, v)), ""]
    if any(r.get("deeppatent_lists") for r in reports):
        def list_cells(r: dict[str, Any]) -> list[str]:
            lists = r.get("deeppatent_lists")
            if not lists:
                return [DASH] * (1 + len(DEEPPATENT_COLUMNS))
            return [pct(lists.get("mAP")), *[pct(lists["top_k"].get(k)) for k in DEEPPATENT_COLUMNS]]

        lines += ["## DeepPatent test lists", "",
                  *_comparison_table(reports, ["mAP", *[f"Top-{k}" for k in DEEPPATENT_COLUMNS]], list_cells), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- plots


def recall_panels(reports: list[dict[str, Any]]) -> dict[str, dict[str, tuple[list[int], list[float | None]]]]:
    """The series `recall_curves` draws: R@k per direction and DeepPatent top-k, one line per model."""
    panels: dict[str, dict[str, tuple[list[int], list[float | None]]]] = {
        "text→image R@k": {}, "image→text R@k": {}, "DeepPatent top-k (1 view / query)": {}}
    for r in reports:
        label = model_label(r)
        curve = _get(r, "retrieval", "curve")
        if curve:
            panels["text→image R@k"][label] = (curve["ks"], curve["text_to_image"])
            panels["image→text R@k"][label] = (curve["ks"], curve["image_to_text"])
        part = _get(r, "deeppatent", "views_per_query", "1")
        if part and "skipped" not in part:
            ks = [int(k) for k in DEEPPATENT_COLUMNS]
            panels["DeepPatent top-k (1 view / query)"][label] = (ks, [part["top_k"].get(str(k)) for k in ks])
    return panels


def recall_png(reports: list[dict[str, Any]], title: str = "") -> bytes:
    """recall.png of one report, or of several side by side (one line per model)."""
    return recall_curves(recall_panels(reports), title)


def confusion_pngs(report: dict[str, Any]) -> dict[str, bytes]:
    """{'confusion_us.png': ..., 'confusion_locarno.png': ...} for the class systems that have a matrix."""
    out = {}
    for key in ("us", "locarno"):
        conf = _get(report, "classification", key, "confusion") or {}
        matrices = {name: conf[m] for m, name in (("zero_shot", "zero-shot"), ("linear_probe", "linear probe"))
                    if m in conf}
        if matrices and conf.get("codes"):
            title = f"{model_label(report)}: {_get(report, 'classification', key, 'name')} (test split, per true class)"
            out[f"confusion_{key}.png"] = confusion_matrix_plot(matrices, conf["codes"], title)
    return out
