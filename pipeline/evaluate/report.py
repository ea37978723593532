"""Evaluation reports people read: Markdown tables of one model, models side by side, recall and confusion plots.

Every function takes the JSON report of `pipeline.evaluate.evaluation.evaluate_vectors` (plus the `model`/`release`
entries the evaluate task adds), so a report read back from report.json renders the same as a fresh one.
Numbers are percentages with two decimals, like the DesignCLIP and DeepPatent tables; '–' = not measured. Every
table names its protocol and the captions it used; comparisons carry DesignCLIP's published numbers in a
reference row marked "published, other split" (never bolded: it is not measured on this release).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from designclip.pipeline.common.plots import confusion_matrix_plot, recall_curves
from designclip.pipeline.deeppatent.views import VIEWS_PROTOCOL
from designclip.pipeline.evaluate.benchmark import PUBLISHED_DEEPPATENT

DASH = "–"
DEEPPATENT_COLUMNS = ("1", "5", "10", "20", "50", "100")
RETRIEVAL = (("designclip_5k", "DesignCLIP protocol (1 view / patent, <= 5k patents)"),
             ("all_views", "all test views"), ("patent_level", "all views, patent level"))
CLASSIFICATION = (("linear_probe_val", "linear probe (fit on val)"), ("designclip_probe", "DesignCLIP probe (val)"),
                  ("prompted", "prompted"), ("zero_shot_heldout_template", "zero-shot (held-out template)"))
# DesignCLIP (Wang et al.) ViT-B, their split of their data: the numbers a comparison is read against
PUBLISHED = {"label": "DesignCLIP ViT-B (published, other split)",
             "retrieval": {"text_to_image": {"5": 0.2975, "10": 0.3991}}, "designclip_probe_us": 0.4134}


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


def captions_line(report: dict[str, Any]) -> str:
    """Which captions the text side used (caption set, model, prompt version) and how many fell back."""
    c = report.get("captions") or {}
    if not c:
        return "Captions: not recorded."
    model = f", model `{c['model']}`" if c.get("model") else ""
    prompt = f", prompt version `{c['prompt_version']}`" if c.get("prompt_version") else ""
    fallback = c.get("fallback_test_views") or 0
    note = (f"; {fallback} test views whose model caption failed fell back to metadata text (left out of the "
            "DesignCLIP protocol)") if fallback else ""
    return f"Captions: `{c.get('source', '?')}`{model}{prompt}{note}."


def _retrieval_rows(ret: dict[str, Any]) -> list[list[str]]:
    rows = []
    for key, label in RETRIEVAL:
        part = ret.get(key)
        if not part:
            continue
        if "skipped" in part:
            rows.append([label, "0", "0", *[DASH] * 6])
            continue
        if key == "designclip_5k":
            label += f", seeded sample (seed {part['seed']})" if part.get("sampled") else ", every eligible patent"
        rows.append([label, str(part["pairs"]), str(part.get("patents", DASH)), *_retrieval_cells(part)])
    return rows


def _method_cell(method: dict[str, Any] | None) -> tuple[str, str, str]:
    """(accuracy, evaluated, notes) of one classification method on one class system."""
    if not method:
        return DASH, DASH, ""
    if "skipped" in method:
        return DASH, DASH, method["skipped"]
    note = f"left out: {_left_out_text(method.get('left_out'))}"
    if method.get("fit_rows") is not None:
        note += f"; fit on {method['fit_rows']} val views"
        if method.get("fit_sampled"):
            note += f" (seeded sample of {method['fit_labelled']})"
    if method.get("c") is not None:
        note += f", C = {method['c']:g}"
    if method.get("unseen_test_classes"):
        note += f"; classes not in val (always wrong): {', '.join(method['unseen_test_classes'])}"
    return pct(method.get("accuracy")), str(method.get("evaluated", DASH)), note


def _method_label(cls: dict[str, Any], key: str, label: str) -> str:
    if key == "prompted":
        return (cls.get(key) or {}).get("label") or label
    return label


def _per_class_lines(section: dict[str, Any]) -> list[str]:
    rows = [r for r in section.get("per_class", []) if r.get("support")]
    if not rows:
        return ["No test view has a known class here."]
    empty = sum(1 for r in section.get("per_class", []) if not r.get("support"))
    lines = _table(["Class", "Title", "Test views", *[f"{label} (%)" for _, label in CLASSIFICATION]],
                   [[r["code"], r.get("title") or "", str(r["support"]), *[pct(r.get(k)) for k, _ in CLASSIFICATION]]
                    for r in rows])
    if empty:
        lines += ["", f"{empty} classes have no test view and are not listed."]
    return lines


def _dp_row(part: dict[str, Any]) -> list[str]:
    return [pct(part.get("mAP")), pct(part.get("mAP_pml")), *[pct((part.get("top_k") or {}).get(k))
                                                              for k in DEEPPATENT_COLUMNS]]


def _deeppatent_lines(dp: dict[str, Any]) -> list[str]:
    rows = []
    for vpq, part in sorted((dp.get("views_per_query") or {}).items()):
        if "skipped" in part:
            rows.append([vpq, str(part.get("queries", 0)), str(part.get("database", 0)),
                         *[DASH] * (2 + len(DEEPPATENT_COLUMNS)), part["skipped"]])
            continue
        note = f"{part['patents']} patents, {part['distractor_patents']} single-view (database only)"
        if part.get("skipped_queries"):
            note += f"; {part['skipped_queries']} queries without a relevant view"
        clipped = [k for k in DEEPPATENT_COLUMNS if (part.get("k_used") or {}).get(k, int(k)) < int(k)]
        if clipped:
            note += f"; k > database ({part['database']}) clipped for top-{','.join(clipped)}"
        rows.append([vpq, str(part["queries"]), str(part["database"]), *_dp_row(part), note])
    return _table(["Views / query", "Queries", "Database", "mAP official (%)", "mAP pml (%)",
                   *[f"Top-{k} (%)" for k in DEEPPATENT_COLUMNS], "Notes"], rows)


def overlap_line(dp: dict[str, Any]) -> str:
    """The training-overlap check in words (loud when the model trained on scored patents)."""
    o = dp.get("overlap") or {}
    if o.get("count"):
        trained_on = o.get("trained_on") or f"training release {o.get('training_release')}"
        return (f"**WARNING: the model's {trained_on} holds {o['count']} of the "
                f"{o.get('scored_patents')} scored patents (e.g. {', '.join(o.get('examples', [])[:5])}); these "
                "numbers are inflated.**")
    if o.get("checked"):
        trained_on = o.get("trained_on") or f"training release {o.get('training_release')} (train/val)"
        return f"Training overlap: none of the {o.get('scored_patents')} scored patents is in its {trained_on}."
    return f"Training overlap: {o.get('note', 'not checked')}."


def _lists_lines(lists: dict[str, Any]) -> list[str]:
    return [f"Query list `{lists['query_list']}`, database list `{lists['db_list']}`, images under "
            f"`{lists['image_root']}` (each sheet cut to its ink box and squared to {lists.get('view_size', '?')} px "
            f"like a training view): {lists['queries']} queries, {lists['database']} database images, "
            f"{lists['patents']} patents ({lists['skipped_queries']} queries without a relevant image).", "",
            *_table(["mAP official (%)", "mAP pml (%)", *[f"Top-{k} (%)" for k in DEEPPATENT_COLUMNS]],
                    [_dp_row(lists)])]


BENCHMARK_HEADER = ("Variant", "Split", "Queries", "Database", "mAP official (%)", "mAP pml (%)", "P@1 (%)",
                    *[f"Top-{k} (%)" for k in DEEPPATENT_COLUMNS[1:]], "Notes")


def _benchmark_row(variant: str, split: str, part: dict[str, Any]) -> list[str]:
    top_k = part.get("top_k") or {}
    if variant == "sheets":
        note = f"{part.get('patents', '?')} patents"
    else:
        note = f"{part.get('patents_with_views', '?')} of {part.get('listed_patents', '?')} listed patents rendered"
        if part.get("missing_patents"):
            note += (f"; {part['missing_patents']} without views (e.g. "
                     f"{', '.join(part.get('missing_patent_examples', [])[:3])})")
        if part.get("single_view_queries"):
            note += f"; {part['single_view_queries']} single-view query patents kept as distractors"
        if part.get("weeks_not_rendered"):
            note += f"; {part['weeks_not_rendered']} listed weeks not rendered (views.json)"
    if part.get("skipped_queries"):
        note += f"; {part['skipped_queries']} queries without a relevant image"
    if part.get("skipped"):
        return [variant, split, str(part.get("queries", 0)), str(part.get("database", 0)),
                *[DASH] * (len(BENCHMARK_HEADER) - 5), f"{note}; not scored: {part['skipped']}"]
    return [variant, split, str(part.get("queries", DASH)), str(part.get("database", DASH)), pct(part.get("mAP")),
            pct(part.get("mAP_pml")), pct(top_k.get("1")), *[pct(top_k.get(k)) for k in DEEPPATENT_COLUMNS[1:]],
            note]


def _benchmark_rows(label: str, bench: dict[str, Any]) -> list[list[str]]:
    rows = [[label, *_benchmark_row("sheets", split, part)] for split, part in bench.get("splits", {}).items()]
    return rows + [[label, *_benchmark_row("per-FIG. views", split, part)]
                   for split, part in (bench.get("per_view") or {}).items()]


def published_rows(width: int) -> list[list[str]]:
    """The published DeepPatent rows (PatentNet, Higuchi & Yanai), marked as not measured here."""
    return [[f"{ref['label']} ({ref['note']})", "sheets", ref["split"], DASH, DASH, pct(ref.get("map_official")),
             pct(ref.get("map_pml")), pct(ref.get("p_at_1")), *[DASH] * (width - 9), ""]
            for ref in PUBLISHED_DEEPPATENT]


def benchmark_lines(bench: dict[str, Any], label: str = "ours") -> list[str]:
    """The benchmark's splits, sheet level and per-FIG. views (both mAPs, P@1, top-k), above the published rows."""
    header = ["Model", *BENCHMARK_HEADER]
    some = next(iter(bench.get("splits", {}).values()), {})
    per_view = (("; per-FIG. views: " + VIEWS_PROTOCOL) if bench.get("per_view") else
                "; no per-FIG. views (they come from `designclip deeppatent build` after render: views/ beside lists/)")
    return [f"Lists `{bench.get('lists_dir')}`, images under `{bench.get('image_root')}`; sheet preprocessing: "
            f"{some.get('preprocessing', 'not recorded')}{per_view}. mAP official = DeepPatent's AP over the full "
            "ranking; mAP pml = pytorch-metric-learning's mean_average_precision at max_bin_count (Higuchi & "
            "Yanai's); P@1 = share of queries whose first hit is of their patent. Published rows are copied from the "
            "papers (other code and preprocessing), not measured here.", "",
            *missing_lines(bench), *_table(header, [*_benchmark_rows(label, bench), *published_rows(len(header))])]


def missing_lines(bench: dict[str, Any]) -> list[str]:
    """One line per split scored without some listed images, so a reader knows the numbers are not on all of them."""
    lines = [f"- {split}: {part['missing_images']} of {part.get('listed_images', '?')} listed images missing "
             "(skipped; see missing_examples in report.json)"
             for split, part in bench.get("splits", {}).items() if part.get("missing_images")]
    return [*lines, ""] if lines else []


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
    lines += [captions_line(report), ""]
    counts = report.get("counts") or {}
    for split in ("test", "probe"):
        c = counts.get(split)
        if c:
            name = "test split" if split == "test" else "probe split (val)"
            lines.append(f"- {name}: {c['rows']} views of {c['patents']} patents, {c['image_ok']} with a "
                         f"readable image; problems: {_left_out_text(c.get('problems'))}")
    lines.append("")

    ret = report.get("retrieval") or {}
    lines += ["## Retrieval (test split)", ""]
    if "all_views" in ret:
        lines += [*_table(["Protocol", "Pairs", "Patents", "T→I R@1", "T→I R@5", "T→I R@10", "I→T R@1", "I→T R@5",
                           "I→T R@10"], _retrieval_rows(ret)), "",
                  *[f"- {label}: {(ret.get(key) or {}).get('protocol', '')}" for key, label in RETRIEVAL],
                  "", f"Left out of retrieval: {_left_out_text(ret.get('left_out'))}; of the DesignCLIP protocol: "
                  f"{_left_out_text((ret.get('designclip_5k') or {}).get('left_out'))}. Median rank of the pair "
                  f"(all views): text→image {ret['all_views']['median_rank']['text_to_image']:g}, image→text "
                  f"{ret['all_views']['median_rank']['image_to_text']:g}.", ""]
    else:
        lines += [f"Not measured: {ret.get('skipped', 'no retrieval section')}.", ""]

    cls = report.get("classification") or {}
    lines += ["## Classification (test split, accuracy %)", ""]
    rows = []
    for key, label in CLASSIFICATION:
        for system in ("us", "locarno"):
            section = cls.get(system) or {}
            acc, n, note = _method_cell((cls.get(key) or {}).get(system))
            rows.append([_method_label(cls, key, label), f"{section.get('name', system)} "
                         f"({section.get('classes', '?')})", acc, n, note])
    lines += [*_table(["Method", "Classes", "Accuracy (%)", "Evaluated", "Notes"], rows), "",
              *[f"- {_method_label(cls, key, label)}: {(cls.get(key) or {}).get('protocol', '')}"
                for key, label in CLASSIFICATION], ""]
    unmatched = _get(report, "classification", "locarno", "unmatched_codes")
    if unmatched:
        lines += [f"Locarno codes not in the title list (left out): "
                  f"{', '.join(f'{c} ({n})' for c, n in sorted(unmatched.items()))}", ""]
    for key, title in (("us", "US design classes"), ("locarno", "Locarno classes")):
        if cls.get(key):
            lines += [f"### Per-class accuracy: {title}", "", *_per_class_lines(cls[key]), ""]

    dp = report.get("deeppatent") or {}
    lines += ["## DeepPatent", "", f"Scored on {dp.get('scored_on') or 'nothing'}: mAP official "
              f"{pct(dp.get('map_official'))}, mAP pml {pct(dp.get('map_pml'))}, P@1 {pct(dp.get('p_at_1'))}.",
              "", overlap_line(dp), "", "### DeepPatent protocol on the test split", "", dp.get("protocol", ""), "",
              *_deeppatent_lines(dp), ""]
    if report.get("deeppatent_benchmark"):
        lines += ["### DeepPatent benchmark (sheets and per-FIG. views)", "",
                  *benchmark_lines(report["deeppatent_benchmark"], model.get("tag", "ours")), ""]
    elif report.get("deeppatent_lists"):
        lines += ["### DeepPatent test lists", "", *_lists_lines(report["deeppatent_lists"]), ""]
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
                      cells: Callable[[dict[str, Any]], list[str]],
                      reference: list[str] | None = None, bold: Sequence[int] | None = None) -> list[str]:
    rows = _bold_best([[model_label(r), *cells(r)] for r in reports],
                      range(1, len(header) + 1) if bold is None else bold)
    if reference is not None:
        rows.append([PUBLISHED["label"], *reference])
    return _table(["Model", *header], rows)


def _retrieval_cells(part: dict[str, Any] | None) -> list[str]:
    if not part or "skipped" in part:
        return [DASH] * 6
    return [*[pct(part["text_to_image"].get(k)) for k in ("1", "5", "10")],
            *[pct(part["image_to_text"].get(k)) for k in ("1", "5", "10")]]


def _published_retrieval() -> list[str]:
    t2i = PUBLISHED["retrieval"]["text_to_image"]
    return [DASH, pct(t2i["5"]), pct(t2i["10"]), DASH, DASH, DASH]


def _dp_cells(report: dict[str, Any], vpq: str) -> list[str]:
    part = _get(report, "deeppatent", "views_per_query", vpq)
    if not part or "skipped" in part:
        return [DASH] * (2 + len(DEEPPATENT_COLUMNS))
    return _dp_row(part)


def _models_lines(reports: list[dict[str, Any]]) -> list[str]:
    """Per model: what it is, which captions its text side was scored with, and the DeepPatent overlap check."""
    out = []
    for r in reports:
        model = r.get("model") or {}
        prompted = _get(r, "classification", "prompted") or {}
        out.append(f"- {model_label(r)}: {model.get('init', '?')}; {captions_line(r)} Prompts: "
                   f"{prompted.get('label', 'prompted')} with `{prompted.get('template', '?')}`. "
                   f"{overlap_line(r.get('deeppatent') or {})}")
    return out


def comparison_markdown(reports: list[dict[str, Any]]) -> str:
    """Models side by side like the paper's tables: one row per model, one column per metric, best in bold."""
    if not reports:
        raise ValueError("no reports to compare")
    releases = sorted({str(_get(r, "release", "version") or r.get("release") or "?") for r in reports})
    lines = [f"# Model comparison on release {', '.join(f'`{v}`' for v in releases)}", "",
             "Percentages; the best value of each column is in bold. First model = ours, the others baselines. "
             f"The last row of a table is DesignCLIP's paper ({PUBLISHED['label']}): their data and split, not "
             "this release, so it is a reference, not a result.", "", *_models_lines(reports), ""]
    if len(releases) > 1:
        lines += ["**Warning: the reports are of different releases; the numbers are not comparable.**", ""]
    recall = ["T→I R@1", "T→I R@5", "T→I R@10", "I→T R@1", "I→T R@5", "I→T R@10"]
    for key, label in RETRIEVAL:
        pairs = sorted({_get(r, "retrieval", key, "pairs") for r in reports}, key=str)
        protocol = next((_get(r, "retrieval", key, "protocol") for r in reports if _get(r, "retrieval", key)), "")
        lines += [f"## Retrieval: {label} (pairs: {', '.join(map(str, pairs))})", "", protocol or "", "",
                  *_comparison_table(reports, recall, lambda r, k=key: _retrieval_cells(_get(r, "retrieval", k)),
                                     _published_retrieval() if key == "designclip_5k" else None), ""]

    def cls_cells(r: dict[str, Any]) -> list[str]:
        return [pct(_get(r, "classification", method, system, "accuracy"))
                for system in ("us", "locarno") for method, _ in CLASSIFICATION]

    header = [f"{system} {label}" for system in ("US", "Locarno") for _, label in CLASSIFICATION]
    reference = [DASH] * len(header)
    reference[1] = pct(PUBLISHED["designclip_probe_us"])
    lines += ["## Classification accuracy (test split; probes fitted on val)", "",
              *_comparison_table(reports, header, cls_cells, reference), ""]
    lines += ["## DeepPatent (stable keys)", "",
              *_comparison_table(reports, ["scored on", "mAP official", "mAP pml", "P@1", "overlap patents"],
                                 lambda r: [str(_get(r, "deeppatent", "scored_on") or DASH),
                                            pct(_get(r, "deeppatent", "map_official")),
                                            pct(_get(r, "deeppatent", "map_pml")),
                                            pct(_get(r, "deeppatent", "p_at_1")),
                                            str(_get(r, "deeppatent", "overlap_patents") if
                                                _get(r, "deeppatent", "overlap_patents") is not None else "unknown")],
                                 bold=(2, 3, 4)),
              ""]
    for vpq in ("1", "2"):
        queries = sorted({_get(r, "deeppatent", "views_per_query", vpq, "queries") for r in reports}, key=str)
        lines += [f"## DeepPatent protocol, {vpq} view(s) per query (queries: {', '.join(map(str, queries))})", "",
                  *_comparison_table(reports, ["mAP official", "mAP pml", *[f"Top-{k}" for k in DEEPPATENT_COLUMNS]],
                                     lambda r, v=vpq: _dp_cells(r, v)), ""]
    if any(r.get("deeppatent_lists") for r in reports):
        def list_cells(r: dict[str, Any]) -> list[str]:
            lists = r.get("deeppatent_lists")
            return _dp_row(lists) if lists else [DASH] * (2 + len(DEEPPATENT_COLUMNS))

        lines += ["## DeepPatent test lists", "",
                  *_comparison_table(reports, ["mAP official", "mAP pml", *[f"Top-{k}" for k in DEEPPATENT_COLUMNS]],
                                     list_cells), ""]
    benched = [r for r in reports if r.get("deeppatent_benchmark")]
    if benched:
        rows = [row for r in benched for row in _benchmark_rows(model_label(r), r["deeppatent_benchmark"])]
        header = ["Model", *BENCHMARK_HEADER]
        lines += ["## DeepPatent benchmark (sheets and per-FIG. views; published rows not measured here)", "",
                  *_table(header, [*rows, *published_rows(len(header))]), ""]
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
        matrices = {name: conf[m] for m, name in CLASSIFICATION[:1] + CLASSIFICATION[2:3] if m in conf}
        if matrices and conf.get("codes"):
            title = f"{model_label(report)}: {_get(report, 'classification', key, 'name')} (test split, per true class)"
            out[f"confusion_{key}.png"] = confusion_matrix_plot(matrices, conf["codes"], title)
    return out
