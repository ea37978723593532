"""Zero-shot with one class order for prompts and targets; the linear probe on separable and on random data."""

from __future__ import annotations

import numpy as np
import pytest
from designclip.pipeline.evaluate.classify import designclip_probe, linear_probe, zero_shot


def _clusters(rng: np.random.Generator, centres: np.ndarray, labels: np.ndarray, noise: float) -> np.ndarray:
    return (centres[labels] + noise * rng.standard_normal((labels.size, centres.shape[1]))).astype(np.float32)


def test_zero_shot_hand_computed_with_unknown_label():
    class_ids = [5, 2, 9]
    text = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # prompt vectors of class 5, 2, 9 in that order
    images = np.array([
        [0.9, 0.1],   # scores 0.9, 0.1, -0.9 -> position 0 -> class 5
        [0.2, 0.8],   # 0.2, 0.8, -0.2 -> position 1 -> class 2
        [-1.0, 0.3],  # -1.0, 0.3, 1.0 -> position 2 -> class 9
        [0.7, 0.6],   # 0.7, 0.6, -0.7 -> class 5 (true class 2: wrong)
        [0.1, 0.9],   # label -1: left out, still predicted (class 2)
    ])
    labels = np.array([5, 2, 9, 2, -1])
    result = zero_shot(images, text, labels, class_ids)
    assert result["predictions"].tolist() == [5, 2, 9, 5, 2]
    assert result["accuracy"] == pytest.approx(3 / 4)  # 4 labelled rows, 3 right
    # per class in class_ids order: 5 -> 1/1, 2 -> rows 1 and 3 -> 1/2, 9 -> 1/1
    assert result["per_class"] == pytest.approx([1.0, 0.5, 1.0])
    assert result["per_class_count"] == [1, 2, 1]
    assert (result["evaluated"], result["left_out"]) == (4, 1)
    assert result["left_out_rows"].tolist() == [4]
    assert result["class_ids"] == class_ids
    assert result["confusion"].tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]  # rows/columns in class_ids order


def test_zero_shot_one_order_versus_the_released_set_sorted_mismatch():
    rng = np.random.default_rng(0)
    # prompts built in the order set() happened to give; targets named by sorted(set()) in the released code
    prompt_order = [3, 0, 4, 1, 5, 2]
    text = np.eye(6)[prompt_order]  # text row i embeds class prompt_order[i]: class c lies on axis c
    labels = rng.integers(0, 6, size=300)
    images = np.eye(6)[labels] + 0.05 * rng.standard_normal((300, 6))
    ours = zero_shot(images, text, labels, class_ids=prompt_order)
    assert ours["accuracy"] == 1.0
    assert np.array_equal(ours["predictions"], labels)
    # the released bug: position i of the prompt order read as class sorted(prompt_order)[i]; no class keeps its
    # position in this order (3!=0, 0!=1, 4!=2, 1!=3, 5!=4, 2!=5), so every prediction lands on another class
    buggy = zero_shot(images, text, labels, class_ids=sorted(prompt_order))
    assert buggy["accuracy"] == 0.0
    assert ours["accuracy"] != buggy["accuracy"]


def test_zero_shot_refuses_labels_without_a_prompt_and_bad_shapes():
    text = np.eye(2)
    with pytest.raises(ValueError, match=r"labels \[7\] are not in class_ids"):
        zero_shot(np.eye(2), text, np.array([0, 7]), [0, 1])
    with pytest.raises(ValueError, match="class prompt vectors"):
        zero_shot(np.eye(2), text, np.array([0, 1]), [0, 1, 2])
    with pytest.raises(ValueError, match="duplicates"):
        zero_shot(np.eye(2), text, np.array([0, 0]), [0, 0])


def test_linear_probe_separable_clusters_is_near_perfect_and_repeatable():
    rng = np.random.default_rng(0)
    centres = 3.0 * rng.standard_normal((4, 16))
    train_y = np.repeat(np.arange(4), 100)
    test_y = np.repeat(np.arange(4), 50)
    train_x = _clusters(rng, centres, train_y, 0.5)
    test_x = _clusters(rng, centres, test_y, 0.5)
    result = linear_probe(train_x, train_y, test_x, test_y, num_classes=4, c_grid=(0.01, 1.0, 100.0))
    assert result["accuracy"] >= 0.98
    assert result["classes"] == [0, 1, 2, 3]
    assert result["c"] in (0.01, 1.0, 100.0)
    assert [row["c"] for row in result["c_sweep"]] == [0.01, 1.0, 100.0]
    assert result["evaluated"] == 200 and result["train_rows"] == 400
    assert all(value >= 0.95 for value in result["per_class"])
    again = linear_probe(train_x, train_y, test_x, test_y, num_classes=4, c_grid=(0.01, 1.0, 100.0))
    assert np.array_equal(again["predictions"], result["predictions"]) and again["c"] == result["c"]


def test_linear_probe_on_labels_unrelated_to_features_is_at_chance():
    rng = np.random.default_rng(1)
    train_x = rng.standard_normal((400, 8)).astype(np.float32)
    test_x = rng.standard_normal((2000, 8)).astype(np.float32)
    train_y = rng.integers(0, 4, size=400)
    test_y = rng.integers(0, 4, size=2000)
    result = linear_probe(train_x, train_y, test_x, test_y, num_classes=4, c_grid=(0.1, 10.0))
    # predictions do not depend on the test labels: expected accuracy 1/4, standard error ~0.01
    assert abs(result["accuracy"] - 0.25) < 0.05


def test_linear_probe_with_a_class_absent_from_train():
    rng = np.random.default_rng(2)
    centres = 4.0 * np.eye(5, 8)
    train_y = np.repeat([0, 1, 3], 40)
    test_y = np.repeat([0, 1, 3, 4], 10)
    train_x = _clusters(rng, centres, train_y, 0.3)
    test_x = _clusters(rng, centres, test_y, 0.3)
    result = linear_probe(train_x, train_y, test_x, test_y, num_classes=5, c_grid=(1.0,))
    assert result["classes"] == [0, 1, 3]
    assert set(result["predictions"].tolist()) <= {0, 1, 3}
    assert result["unseen_test_classes"] == [4]
    # 30 of 40 test rows belong to seen classes (all right on these clusters); the 10 of class 4 cannot be
    assert result["accuracy"] == pytest.approx(30 / 40)
    assert result["per_class"][2] is None and result["per_class"][4] == 0.0
    assert result["per_class_count"] == [10, 10, 0, 10, 10]


def test_linear_probe_with_one_train_class_and_unknown_rows():
    train_x = np.ones((5, 3), dtype=np.float32)
    train_y = np.array([2, 2, 2, -1, 2])
    test_x = np.zeros((4, 3), dtype=np.float32)
    test_y = np.array([2, 2, 1, -1])
    result = linear_probe(train_x, train_y, test_x, test_y, num_classes=3)
    assert result["predictions"].tolist() == [2, 2, 2, 2]
    assert result["accuracy"] == pytest.approx(2 / 3)  # the -1 row is left out; 2 of 3 labelled rows are class 2
    assert result["c"] is None and result["classes"] == [2]
    assert (result["left_out"], result["train_left_out"], result["train_rows"]) == (1, 1, 4)
    assert result["left_out_rows"].tolist() == [3]
    with pytest.raises(ValueError, match="no labelled train rows"):
        linear_probe(train_x, np.full(5, -1), test_x, test_y, num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        linear_probe(train_x, np.full(5, 3), test_x, test_y, num_classes=3)


def test_designclip_probe_is_one_linear_layer_trained_with_adam_as_published() -> None:
    rng = np.random.default_rng(0)
    centres = 3.0 * np.eye(8)[:3]
    y = np.repeat(np.arange(3), 50)
    x = centres[y] + 0.3 * rng.normal(size=(150, 8))
    tx = centres[[0, 1, 2, 2]] + 0.3 * rng.normal(size=(4, 8))
    a = designclip_probe(x, y, tx, np.array([0, 1, 2, -1]), 33)
    assert a["settings"] == {"epochs": 5, "batch_size": 32, "lr": 1e-4, "optimizer": "Adam", "seed": 0}
    assert a["steps"] == 5 * 5  # ceil(150 / 32) batches per epoch, 5 epochs
    assert a["evaluated"] == 3 and a["left_out"] == 1
    again = designclip_probe(x, y, tx, np.array([0, 1, 2, -1]), 33)
    assert again["predictions"].tolist() == a["predictions"].tolist()  # seeded init and batch order
    learned = designclip_probe(x, y, tx, np.array([0, 1, 2, -1]), 33, lr=0.05)  # the same loop, a bigger step
    assert learned["accuracy"] == 1.0
