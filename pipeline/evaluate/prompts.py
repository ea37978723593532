"""The class prompts a model is scored with (its own template, the held-out one) and what its report names it."""

from __future__ import annotations

from typing import Any

from designclip.pipeline.common.classes import locarno_class_titles, us_design_class_titles
from designclip.pipeline.evaluate.classes import HELDOUT_TEMPLATE

MODEL_KEYS = ("tag", "dim", "has_text", "prompt_template", "spec", "kind", "init", "model_name", "weights_sha256",
              "export")


def model_record(encoder: Any) -> dict[str, Any]:
    """The encoder as the report names it."""
    record = encoder.record()
    return {k: record.get(k) for k in MODEL_KEYS}


def trained_prompts(encoder: Any) -> bool:
    """True when the model trained with the class-prompt term (its prompt accuracy is then not zero-shot)."""
    info = encoder.record()
    if not str(info.get("kind", "")).startswith("designclip-clip") or not (info.get("export") or {}).get("steps"):
        return False
    from designclip.pipeline.train.export import read_export_meta

    weights = read_export_meta(info["path"]).get("loss_weights")
    return weights is None or float(weights.get("prompt", 0.0)) > 0.0


def class_prompt_vectors(encoder: Any) -> tuple[dict[str, tuple[Any, Any]], dict[str, dict[str, Any]]]:
    """(prompt vectors per method, what each used): the model's own template and the held-out one."""
    from designclip.pipeline.train.model import class_prompts

    if not encoder.has_text:
        return {}, {}
    us, loc = us_design_class_titles(), locarno_class_titles()
    own = encoder.prompt_template or encoder.record().get("prompt_template")
    trained = trained_prompts(encoder)
    prompts = {"prompted": (encoder.encode_texts(encoder.class_prompts(us)),
                            encoder.encode_texts(encoder.class_prompts(loc)))}
    info: dict[str, dict[str, Any]] = {
        "prompted": {"template": own, "trained_prompts": trained,
                     "label": "prompted (trained prompts)" if trained else "zero-shot (model's template, untrained)"},
        "zero_shot_heldout_template": {"template": HELDOUT_TEMPLATE}}
    if own != HELDOUT_TEMPLATE:
        prompts["zero_shot_heldout_template"] = (encoder.encode_texts(class_prompts(us, HELDOUT_TEMPLATE)),
                                                 encoder.encode_texts(class_prompts(loc, HELDOUT_TEMPLATE)))
    else:
        info["zero_shot_heldout_template"]["skipped"] = "the model trained with the held-out template itself"
    return prompts, info
