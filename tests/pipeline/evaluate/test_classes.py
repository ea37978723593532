"""Classification sections of a report: probes fitted on the val split only, prompted and held-out-template zero-shot
as separate methods."""

from __future__ import annotations

import numpy as np
import pytest
from designclip.pipeline.evaluate.evaluation import EvaluationError, evaluate_vectors

from tests.fixtures.evaluate import LOCARNO, class_case, make_split


def test_probes_refuse_the_train_split() -> None:
    test, probe, us_prompts, loc_prompts = class_case()
    train = make_split(probe.image, None, cls=probe.meta.column("cls").to_pylist(), split="train")
    with pytest.raises(EvaluationError, match="trained on overstates it; pass the val split"):
        evaluate_vectors(test, train, {"prompted": (us_prompts, loc_prompts)}, LOCARNO)


def test_prompted_and_heldout_template_are_separate_methods() -> None:
    test, val, us_prompts, loc_prompts = class_case()
    wrong = np.roll(us_prompts, 1, axis=0)  # the held-out template's vectors point at the next class
    cls = evaluate_vectors(test, val, {"prompted": (us_prompts, loc_prompts),
                                       "zero_shot_heldout_template": (wrong, loc_prompts)}, LOCARNO,
                           prompt_info={"prompted": {"template": "a patent drawing of {title}",
                                                     "trained_prompts": True}})["classification"]
    assert cls["prompted"]["us"]["accuracy"] == pytest.approx(0.8)
    assert cls["zero_shot_heldout_template"]["us"]["accuracy"] == 0.0
    assert cls["prompted"]["trained_prompts"] is True and "a sketch of" in cls["zero_shot_heldout_template"][
        "protocol"]
    assert cls["designclip_probe"]["us"]["fit_rows"] == 20 and cls["designclip_probe"]["us"]["steps"] == 5
