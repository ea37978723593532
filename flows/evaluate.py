"""The evaluate flow: ours and baselines on one release -> a report folder per model + a side-by-side comparison."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from designclip.flows.step import Run, Step
from designclip.pipeline.embed.encoder import EncoderSpec, model_tag
from designclip.pipeline.evaluate.classes import PROBE_MAX
from designclip.pipeline.evaluate.driver import EvaluateOptions, EvalUnit, evaluation_of
from designclip.pipeline.evaluate.report import comparison_markdown, model_label, pct, recall_png
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.reports import read_report_file, write_comparison
from designclip.tasks.evaluate import evaluate_task
from designclip.tasks.progress import artifact_key
from prefect import flow, get_run_logger
from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact

IMAGE_ARTIFACT_MAX_BYTES = 512 * 1024  # plots above this are linked by path only (artifacts live in Prefect's DB)


def comparison_name(tags: list[str]) -> str:
    """`ours-vs-baseline` (hashed when that gets too long for a file name)."""
    name = "-vs-".join(tags)
    if len(name) <= 120:
        return name
    return f"{tags[0][:60]}-vs-{len(tags) - 1}-baselines-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """One comparison-table row: the numbers the paper's tables lead with (percent strings)."""
    def get(*path: str) -> Any:
        node: Any = report
        for p in path:
            node = node.get(p) if isinstance(node, dict) else None
        return node

    return {
        "model": model_label(report),
        "T->I R@5 (5k)": pct(get("retrieval", "designclip_5k", "text_to_image", "5")),
        "T->I R@10 (5k)": pct(get("retrieval", "designclip_5k", "text_to_image", "10")),
        "I->T R@10 (5k)": pct(get("retrieval", "designclip_5k", "image_to_text", "10")),
        "T->I R@10 (all views)": pct(get("retrieval", "all_views", "text_to_image", "10")),
        "T->I R@10 (patent)": pct(get("retrieval", "patent_level", "text_to_image", "10")),
        "US probe (val)": pct(get("classification", "linear_probe_val", "us", "accuracy")),
        "US DesignCLIP probe": pct(get("classification", "designclip_probe", "us", "accuracy")),
        "US prompted": pct(get("classification", "prompted", "us", "accuracy")),
        "US zero-shot (held-out template)": pct(get("classification", "zero_shot_heldout_template", "us",
                                                    "accuracy")),
        "DeepPatent mAP": pct(get("deeppatent", "map_official")),
        "DeepPatent mAP (pml)": pct(get("deeppatent", "map_pml")),
        "DeepPatent P@1": pct(get("deeppatent", "p_at_1")),
        "DeepPatent val mAP": pct(get("deeppatent_benchmark", "splits", "val", "mAP")),
        "DeepPatent val mAP (pml)": pct(get("deeppatent_benchmark", "splits", "val", "mAP_pml")),
    }


def _image_artifact(png: bytes, key: str, description: str) -> None:
    """The plot itself in the Prefect UI (as a data: URL; a local file path would not display there)."""
    if len(png) <= IMAGE_ARTIFACT_MAX_BYTES:
        url = "data:image/png;base64," + base64.b64encode(png).decode()
        create_image_artifact(url, key=key, description=description)


def _report_artifacts(folder: DataFolder, release: str, result: dict[str, Any]) -> None:
    """The report's Markdown (with its file paths) and its plots as Prefect artifacts."""
    tag = result["model_tag"]
    files = result.get("files") or {}
    markdown = (read_report_file(folder, release, tag, "report.md") or b"").decode()
    paths = "\n".join(f"- `{name}`: `{path}`" for name, path in sorted(files.items()))
    create_markdown_artifact(f"{markdown}\n\n## Files\n\n{paths}\n", key=artifact_key("evaluate", release, tag),
                             description=f"Evaluation of {tag} on release {release}")
    for name in ("recall.png", "confusion_us.png", "confusion_locarno.png"):
        png = read_report_file(folder, release, tag, name) if name in files else None
        if png:
            _image_artifact(png, artifact_key("evaluate", release, tag, name.removesuffix(".png")),
                            f"{name} of {tag} on {release}")


@flow(name="evaluate", log_prints=True)
def evaluate_flow(release: str, models: list[str], data_root: str = layout.DEFAULT_DATA_ROOT,
                  pretrained: list[str | None] | None = None, deeppatent_lists: dict[str, str] | None = None,
                  seed: int = 0, pairs_5k: int = 5000, batch_size: int = 64, device: str | None = None,
                  force: bool = False, probe_max: int = PROBE_MAX,
                  allow_deeppatent_overlap: bool = False, skip_missing: bool = False) -> dict[str, Any]:
    """Evaluate each model (first = ours, the rest baselines; missing vectors are embedded first) and compare them.

    `pretrained[i]` is the open_clip pretrained tag of `models[i]` (None for folders, runs and random init).
    `deeppatent_lists` = {query_list, db_list, image_root} also scores the real DeepPatent test lists ({lists_dir,
    image_root}: the benchmark's test and val lists, beside the published rows); a model whose
    training release holds any of the scored patents is refused unless `allow_deeppatent_overlap`; a listed image
    that is missing is an error unless `skip_missing` (then its line is left out and counted in the report).
    """
    log = get_run_logger()
    if not models:
        raise ValueError("give at least one model to evaluate")
    pretrained = list(pretrained) if pretrained is not None else [None] * len(models)
    if len(pretrained) != len(models):
        raise ValueError(f"{len(pretrained)} pretrained tags for {len(models)} models: give one per model "
                         "(None/'' where it has none)")
    specs = [EncoderSpec(m, p or None) for m, p in zip(models, pretrained, strict=True)]
    tags = [model_tag(s) for s in specs]
    if len(set(tags)) != len(tags):
        raise ValueError(f"the models give the same tag twice ({', '.join(tags)}): each model once")
    folder = DataFolder(data_root)
    options = EvaluateOptions(seed, pairs_5k, deeppatent_lists, batch_size, device, force=force, probe_max=probe_max,
                              allow_deeppatent_overlap=allow_deeppatent_overlap, skip_missing=skip_missing)
    results = []
    for i, spec in enumerate(specs):
        unit = EvalUnit(release, spec, tags[i])
        result = evaluation_of(folder, unit, evaluate_task(data_root, release, spec, tags[i], options))
        result["report"]["model"]["role"] = "ours" if i == 0 else "baseline"
        _report_artifacts(folder, release, result)
        done = "already evaluated" if result["skipped"] else "evaluated"
        log.info("%s: %s (%s)", result["model_tag"], result["report"].get("not_evaluated") or done,
                 result["report_dir"])
        results.append(result)
    reports = [r["report"] for r in results]
    comparison = None
    if len(reports) > 1:
        name = comparison_name(tags)
        markdown = comparison_markdown(reports)
        png = recall_png(reports, f"release {release}: {' vs '.join(tags)}")
        comparison = write_comparison(folder, release, name, markdown, png)
        create_markdown_artifact(f"{markdown}\n\nFiles: `{comparison['markdown']}`, `{comparison['plot']}`\n",
                                 key=artifact_key("evaluate", release, "compare"),
                                 description=f"Models compared on release {release}")
        _image_artifact(png, artifact_key("evaluate", release, "compare-recall"), f"Recall curves on {release}")
    create_table_artifact([headline(r) for r in reports], key=artifact_key("evaluate", release, "table"),
                          description=f"Evaluation on release {release} (percent; first row = ours)")
    return {"release": release, "models": [
        {"model_tag": r["model_tag"], "report_dir": r["report_dir"], "skipped": r["skipped"],
         **headline(r["report"])} for r in results], "comparison": comparison, "reports": reports}


def _dag_call(r: Run) -> Any:
    """The trained model, and the profile's baseline beside it."""
    models, pretrained = [r.run], [None]
    if r.profile.baseline:
        models.append(r.profile.baseline)
        pretrained.append(r.profile.baseline_pretrained)
    return evaluate_flow.fn(release=r.release, models=models, data_root=r.data_root, pretrained=pretrained,
                         batch_size=r.profile.embed_batch_size)


STEP = Step(_dag_call, lambda res: (len(res["models"]), sum(1 for m in res["models"] if m.get("skipped"))),
            lambda r, _: r.folder.path(layout.release_derived_dirs(r.release)[2]))
