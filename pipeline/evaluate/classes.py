"""Classification sections of a report: probes fitted on the val split, prompted and held-out-template zero-shot.

Four methods per class system (the 33 US design classes and the Locarno classes), each scored on the test split:

- ``linear_probe_val``: multinomial logistic regression (C swept) fitted on the val split (with ``--split-by
  year`` the held-out val year), never on images the encoder trained on.
- ``designclip_probe``: DesignCLIP's probe (one nn.Linear, Adam lr 1e-4, batch 32, 5 epochs, seeded) on the same.
- ``prompted``: nearest class prompt with the model's own template; "trained prompts" when the model was trained
  with the class-prompt term (then it is not zero-shot).
- ``zero_shot_heldout_template``: nearest class prompt with a template no model here trains on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from designclip.pipeline.evaluate.classify import DESIGNCLIP_PROBE, designclip_probe, linear_probe, zero_shot

HELDOUT_TEMPLATE = "a sketch of {title}"  # DesignCLIP-style category prompt the models here never train on
PROBES = ("linear_probe_val", "designclip_probe")
PROMPTS = ("prompted", "zero_shot_heldout_template")
METHODS = (*PROBES, *PROMPTS)
PROBE_MAX = 100_000  # labelled val views a probe fits on at most (a seeded sample beyond)
PROTOCOLS = {
    "linear_probe_val": "logistic regression (L-BFGS, C swept on 20 % held out) fitted on the val split, scored on "
                        "test",
    "designclip_probe": "DesignCLIP's probe: one nn.Linear, Adam lr {lr:g}, batch {batch_size}, {epochs} epochs, "
                        "seeded; fitted on the val split, scored on test".format(**DESIGNCLIP_PROBE),
    "prompted": "nearest class prompt with the model's own template",
    "zero_shot_heldout_template": f"true zero-shot: nearest class prompt with the held-out template "
                                  f"{HELDOUT_TEMPLATE!r}",
}


def locarno_labels(codes: Sequence[str | None], locarno_codes: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Locarno class codes ('02', '2', '02-01') -> index in `locarno_codes`, -1 for unknown; unmatched counts."""
    index = {str(c): i for i, c in enumerate(locarno_codes)}
    labels = np.full(len(codes), -1, dtype=np.int64)
    unmatched: Counter[str] = Counter()
    for i, code in enumerate(codes):
        text = (code or "").strip()
        if not text:
            continue
        head = text.split("-", 1)[0]
        key = next((c for c in (text, head, head.zfill(2)) if c in index), None)
        if key is None:
            unmatched[text] += 1
        else:
            labels[i] = index[key]
    return labels, dict(unmatched)


def _summary(result: dict[str, Any], image_left_out: int, codes: Sequence[str]) -> dict[str, Any]:
    left = {"unknown_class": int(result["left_out"])}
    if image_left_out:
        left["image_unreadable"] = int(image_left_out)
    out = {"accuracy": result["accuracy"], "evaluated": int(result["evaluated"]), "left_out": left,
           "classes_with_support": int(sum(1 for s in result["per_class_count"] if s))}
    if "train_rows" in result:
        out.update({"fit_rows": result["train_rows"], "fit_classes": [codes[c] for c in result["classes"]],
                    "unseen_test_classes": [codes[c] for c in result["unseen_test_classes"]]})
    if result.get("c") is not None:
        out.update({"c": result["c"], "c_sweep": result["c_sweep"]})
    if "steps" in result:
        out.update({"steps": result["steps"], "settings": result["settings"]})
    return out


def _probe_inputs(probe: Any, labels: np.ndarray, seed: int, probe_max: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """The probe split's readable, labelled rows (a seeded sample beyond probe_max) and what was left out."""
    ok = probe.image_ok
    x, y = probe.image[ok], np.asarray(labels)[ok]
    labelled = int((y >= 0).sum())
    info = {"fit_labelled": labelled, "fit_sampled": labelled > probe_max,
            "fit_left_out": {"unknown_class": int((y < 0).sum()),
                             **({"image_unreadable": int((~ok).sum())} if (~ok).any() else {})}}
    if labelled > probe_max:
        pick = np.sort(np.random.default_rng(seed).choice(np.flatnonzero(y >= 0), probe_max, replace=False))
        x, y = x[pick], y[pick]
    return x, y, info


def evaluate_classes(name: str, codes: Sequence[str], titles: dict[str, str], test: Any, test_labels: np.ndarray,
                     probe: Any | None, probe_labels: np.ndarray | None,
                     prompt_features: dict[str, np.ndarray | None], seed: int = 0, probe_max: int = PROBE_MAX
                     ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(per-class table + confusion matrices, {method: summary}) of one class system on the test split."""
    ok = test.image_ok
    x, y = test.image[ok], np.asarray(test_labels)[ok]
    dropped = int((~ok).sum())
    results: dict[str, dict[str, Any]] = {}
    methods: dict[str, dict[str, Any]] = {}
    for method in PROMPTS:
        features = prompt_features.get(method)
        if features is None:
            methods[method] = {"skipped": "image-only model: no class prompt vectors"}
        elif y.size == 0:
            methods[method] = {"skipped": "no test view with a readable image"}
        else:
            results[method] = zero_shot(x, features, y, list(range(len(codes))))
            methods[method] = {**_summary(results[method], dropped, codes), "prompts": int(features.shape[0])}
    fits: dict[str, Callable[..., dict[str, Any]]] = {"linear_probe_val": linear_probe,
                                                      "designclip_probe": designclip_probe}
    px, py, info = _probe_inputs(probe, probe_labels, seed, probe_max) if probe is not None else (None, None, {})
    for method, fit in fits.items():
        if probe is None:
            methods[method] = {"skipped": "no val split vectors to fit the probe on"}
        elif not (py >= 0).any():
            methods[method] = {"skipped": "no labelled val view with a readable image", **info}
        elif y.size == 0:
            methods[method] = {"skipped": "no test view with a readable image"}
        else:
            results[method] = fit(px, py, x, y, len(codes), seed=seed)
            methods[method] = {**_summary(results[method], dropped, codes), **info}
    labelled = y[y >= 0]
    support = np.bincount(labelled, minlength=len(codes)) if labelled.size else np.zeros(len(codes), np.int64)
    predicted: set[int] = set()
    for r in results.values():
        predicted |= {int(p) for p in np.asarray(r["predictions"])[y >= 0]}
    present = [i for i in range(len(codes)) if support[i] or i in predicted]
    detail = {
        "name": name, "classes": len(codes),
        "per_class": [{"code": code, "title": titles.get(code, ""), "support": int(support[i]),
                       **{m: (r["per_class"][i] if support[i] else None) for m, r in results.items()}}
                      for i, code in enumerate(codes)],
        "confusion": {"codes": [codes[i] for i in present],
                      **{m: np.asarray(r["confusion"])[np.ix_(present, present)] for m, r in results.items()}},
    }
    return detail, methods
