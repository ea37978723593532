"""Caption <-> image retrieval under DesignCLIP's protocol: one view per patent without fallback captions, all views,
per patent, and the seeded sample of patents."""

from __future__ import annotations

import numpy as np
import pytest
from designclip.pipeline.evaluate.evaluation import evaluate_vectors

from tests.fixtures.evaluate import LOCARNO, make_split


def test_designclip_protocol_one_view_per_patent_without_fallback_captions() -> None:
    """Patent A: FIG. 1 front, FIG. 2 perspective -> FIG. 2 is its view; B: FIG. 10 and FIG. 2 -> FIG. 2; C's only
    view has a fallback caption -> C is left out of the headline and counted."""
    e = np.eye(8)
    image = np.stack([e[0], e[1], e[2], e[3], e[4]])
    # caption of A/FIG.1 equals A/FIG.2's image: a miss for the paired-row rule, a hit at patent level
    text = np.stack([e[1], e[1], e[2], e[3], e[4]])
    test = make_split(image, text, patents=["A", "A", "B", "B", "C"])
    meta = test.meta
    figs, views = ["1", "2", "10", "2", "1"], ["front", "front perspective", "top", "left", "front"]
    test.meta = meta.set_column(meta.schema.get_field_index("fig"), "fig", [figs]) \
        .set_column(meta.schema.get_field_index("view"), "view", [views])
    fallback = np.array([False, False, False, False, True])
    ret = evaluate_vectors(test, None, {}, LOCARNO, caption_fallback=fallback)["retrieval"]
    head = ret["designclip_5k"]
    assert (head["pairs"], head["patents"], head["sampled"]) == (2, 2, False)
    assert head["left_out"] == {"metadata_fallback_caption": 1}
    assert head["text_to_image"]["1"] == 1.0  # A/FIG.2 and B/FIG.2 captions find their images
    every = ret["all_views"]
    assert every["pairs"] == 5 and every["metadata_fallback_captions"] == 1
    assert every["text_to_image"]["1"] == pytest.approx(0.8)  # A/FIG.1's caption ranks A/FIG.2's image first
    assert ret["patent_level"]["text_to_image"]["1"] == 1.0  # ... which is a hit at patent level


def test_designclip_protocol_samples_patents_with_the_seed() -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(30, 16))
    test = make_split(image, image + 0.1 * rng.normal(size=(30, 16)), patents=[f"P{i // 2:02d}" for i in range(30)])
    a = evaluate_vectors(test, None, {}, LOCARNO, pairs_5k=6, seed=3)["retrieval"]["designclip_5k"]
    b = evaluate_vectors(test, None, {}, LOCARNO, pairs_5k=6, seed=3)["retrieval"]["designclip_5k"]
    c = evaluate_vectors(test, None, {}, LOCARNO, pairs_5k=6, seed=4)["retrieval"]["designclip_5k"]
    assert (a["pairs"], a["patents"], a["sampled"], a["requested"]) == (6, 6, True, 6)
    assert a == b and c["seed"] == 4
