"""Zero-shot and linear-probe classification on frozen features, with one class order end to end.

Zero-shot: row i of ``class_text_features`` is the prompt of ``class_ids[i]`` and a prediction at position i
IS ``class_ids[i]``; the same list orders the prompts and names the targets. (The released DesignCLIP code built
the prompts from ``set(labels)`` but the targets from ``sorted(set(labels))``, so its predictions were scored
against another class whenever the two orders differed.)

Linear probe: multinomial logistic regression on the raw frozen features, like CLIP's scikit-learn probe
(L-BFGS, L2 on the weights, not on the bias, ``C`` = inverse regularisation strength as in scikit-learn: the
loss is ``C * sum(cross entropy) + ||W||^2 / 2``; the fit stops when the largest gradient entry of the
per-sample loss is below 1e-4, scikit-learn's default ``tol``, or after ``max_iter`` iterations). ``C`` is
chosen on a seeded, per-class 20% held-out part of train (ties -> the smaller C), then the model is refitted on
all of train. Only classes seen in train can be predicted; test samples of other classes count as wrong and are
reported. Rows labelled -1 (unknown) are left out and counted, in train and test. Everything runs on CPU in
float32 from zero-initialised weights, so a run is repeatable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from designclip.pipeline.evaluate.metrics import accuracy, confusion_matrix, per_class_accuracy

DEFAULT_C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
HELD_OUT_SHARE = 0.2


def _per_class_list(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def zero_shot(
    image_features: np.ndarray,
    class_text_features: np.ndarray,
    labels: np.ndarray,
    class_ids: Sequence[int],
) -> dict:
    """Predict the class whose prompt embedding is closest; one ``class_ids`` order for prompts and targets.

    Returns accuracy, per_class (aligned with class_ids, None without test samples), per_class_count,
    predictions (class ids for every row, left-out rows included), confusion (rows/columns in class_ids
    order), evaluated, left_out (rows with label -1) and left_out_rows. A label that is neither -1 nor in
    class_ids is an error: it could never be predicted.
    """
    image = np.asarray(image_features, dtype=np.float32)
    text = np.asarray(class_text_features, dtype=np.float32)
    labels = np.asarray(labels).astype(np.int64).ravel()
    ids = np.asarray([int(c) for c in class_ids], dtype=np.int64)
    if image.ndim != 2 or text.ndim != 2 or image.shape[1] != text.shape[1]:
        raise ValueError(f"feature shapes do not fit: images {image.shape}, class prompts {text.shape}")
    if text.shape[0] != ids.size:
        raise ValueError(f"{text.shape[0]} class prompt vectors for {ids.size} class ids")
    if len(set(ids.tolist())) != ids.size:
        raise ValueError(f"class_ids has duplicates: {ids.tolist()}")
    if labels.size != image.shape[0]:
        raise ValueError(f"{labels.size} labels for {image.shape[0]} image rows")
    known = labels >= 0
    unlisted = sorted(set(labels[known].tolist()) - set(ids.tolist()))
    if unlisted:
        raise ValueError(f"labels {unlisted[:10]} are not in class_ids; give every class a prompt")

    position = np.argmax(image @ text.T, axis=1) if ids.size else np.zeros(labels.size, dtype=np.int64)
    predictions = ids[position] if ids.size else np.full(labels.size, -1, dtype=np.int64)
    lookup = {int(c): i for i, c in enumerate(ids)}
    target_position = np.asarray([lookup[int(t)] for t in labels[known]], dtype=np.int64)
    kept_position = position[known]
    per_class = per_class_accuracy(kept_position, target_position, ids.size)
    return {
        "accuracy": accuracy(kept_position, target_position),
        "class_ids": ids.tolist(),
        "per_class": _per_class_list(per_class),
        "per_class_count": np.bincount(target_position, minlength=ids.size).tolist(),
        "predictions": predictions.astype(np.int64),
        "confusion": confusion_matrix(kept_position, target_position, ids.size),
        "evaluated": int(known.sum()),
        "left_out": int((~known).sum()),
        "left_out_rows": np.flatnonzero(~known).astype(np.int64),
    }


def _held_out_split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class, ~20% of its rows (seeded) for validation, never a class's last row; (fit_rows, val_rows)."""
    rng = np.random.default_rng(seed)
    val = []
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        take = min(int(round(HELD_OUT_SHARE * rows.size)), rows.size - 1)
        if take > 0:
            val.append(rng.permutation(rows)[:take])
    val_rows = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    fit_mask = np.ones(labels.size, dtype=bool)
    fit_mask[val_rows] = False
    return np.flatnonzero(fit_mask), val_rows


def _fit(
    x: torch.Tensor, y: torch.Tensor, num_outputs: int, c: float, max_iter: int,
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by L-BFGS; loss scaled by 1/(C n) so C means what it does in sklearn."""
    weight = torch.zeros(x.shape[1], num_outputs, dtype=x.dtype) if start is None else start[0].clone()
    bias = torch.zeros(num_outputs, dtype=x.dtype) if start is None else start[1].clone()
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-4, tolerance_change=1e-9,
        history_size=20, line_search_fn="strong_wolfe",
    )
    l2 = 1.0 / (2.0 * c * x.shape[0])

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y) + l2 * (weight * weight).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


def _predict(x: torch.Tensor, model: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
    with torch.no_grad():
        return torch.argmax(x @ model[0] + model[1], dim=1).numpy()


def _probe_inputs(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                  test_y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features as float32 matrices of one width and labels as int64 vectors, for either probe."""
    train_x = np.asarray(train_x, dtype=np.float32)
    test_x = np.asarray(test_x, dtype=np.float32)
    train_y = np.asarray(train_y).astype(np.int64).ravel()
    test_y = np.asarray(test_y).astype(np.int64).ravel()
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"feature shapes do not fit: train {train_x.shape}, test {test_x.shape}")
    return train_x, train_y, test_x, test_y


def _probe_result(predictions: np.ndarray, test_y: np.ndarray, num_classes: int, classes: np.ndarray,
                  train_rows: int, train_left_out: int, c: float | None, sweep: list[dict]) -> dict:
    """The result keys both probes share: scores over the labelled test rows, what was left out, what was fitted."""
    test_keep = test_y >= 0
    target, kept_pred = test_y[test_keep], predictions[test_keep]
    return {
        "accuracy": accuracy(kept_pred, target),
        "per_class": _per_class_list(per_class_accuracy(kept_pred, target, num_classes)),
        "per_class_count": np.bincount(target, minlength=num_classes).tolist(),
        "c": c,
        "c_sweep": sweep,
        "predictions": predictions,
        "classes": classes.tolist(),
        "confusion": confusion_matrix(kept_pred, target, num_classes),
        "evaluated": int(test_keep.sum()),
        "left_out": int((~test_keep).sum()),
        "left_out_rows": np.flatnonzero(~test_keep).astype(np.int64),
        "train_rows": train_rows,
        "train_left_out": train_left_out,
        "unseen_test_classes": sorted(set(target.tolist()) - set(classes.tolist())),
    }


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    num_classes: int,
    seed: int = 0,
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    max_iter: int = 1000,
) -> dict:
    """Logistic regression on frozen features (C swept on held-out train, refit on all train); scores on test.

    Returns accuracy, per_class (list over 0..num_classes-1, None without test samples), per_class_count,
    c (chosen C; None when train has one class and nothing is fitted), c_sweep ([{c, val_accuracy}]),
    predictions (class ids for every test row), classes (class ids the model can predict), confusion,
    evaluated / left_out / left_out_rows (test rows labelled -1), train_rows, train_left_out,
    unseen_test_classes (test classes absent from train: their samples count as wrong).
    """
    train_x, train_y, test_x, test_y = _probe_inputs(train_x, train_y, test_x, test_y)
    if train_y.size != train_x.shape[0] or test_y.size != test_x.shape[0]:
        raise ValueError("labels and feature rows differ in number")
    for name, y in (("train", train_y), ("test", test_y)):
        if y.size and y.max() >= num_classes:
            raise ValueError(f"{name} label {int(y.max())} >= num_classes {num_classes}")
    if not c_grid or min(c_grid) <= 0:
        raise ValueError(f"c_grid must hold positive values, got {tuple(c_grid)}")

    train_keep = train_y >= 0
    x, y = train_x[train_keep], train_y[train_keep]
    if y.size == 0:
        raise ValueError("no labelled train rows: nothing to fit a linear probe on")
    classes = np.unique(y)
    tx = torch.from_numpy(np.ascontiguousarray(test_x))
    sweep: list[dict] = []
    chosen: float | None = None

    if classes.size == 1:
        predictions = np.full(test_y.size, int(classes[0]), dtype=np.int64)
    else:
        code = np.searchsorted(classes, y)
        fit_rows, val_rows = _held_out_split(code, seed)
        grid = sorted(float(c) for c in c_grid)
        chosen = grid[len(grid) // 2]
        fit_classes = np.unique(code[fit_rows])
        if val_rows.size and fit_classes.size > 1:
            fx = torch.from_numpy(x[fit_rows])
            fy = torch.from_numpy(np.searchsorted(fit_classes, code[fit_rows]))
            vx = torch.from_numpy(x[val_rows])
            best = -1.0
            model = None
            for c in grid:  # ascending C with warm starts: each fit starts from the more regularised one
                model = _fit(fx, fy, fit_classes.size, c, max_iter, model)
                val_acc = accuracy(fit_classes[_predict(vx, model)], code[val_rows])
                sweep.append({"c": c, "val_accuracy": val_acc})
                if val_acc > best:
                    best, chosen = val_acc, c
        model = _fit(torch.from_numpy(x), torch.from_numpy(code), classes.size, chosen, max_iter)
        predictions = classes[_predict(tx, model)].astype(np.int64)

    return _probe_result(predictions, test_y, num_classes, classes, int(y.size), int((~train_keep).sum()), chosen,
                         sweep)


DESIGNCLIP_PROBE = {"epochs": 5, "batch_size": 32, "lr": 1e-4}  # DesignCLIP's probe: one nn.Linear trained by Adam


def designclip_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    num_classes: int,
    seed: int = 0,
    epochs: int = DESIGNCLIP_PROBE["epochs"],
    batch_size: int = DESIGNCLIP_PROBE["batch_size"],
    lr: float = DESIGNCLIP_PROBE["lr"],
) -> dict:
    """DesignCLIP's linear probe: one nn.Linear(dim, num_classes), Adam, cross entropy, shuffled batches, seeded.

    Same result keys as ``linear_probe`` (``c`` None, ``c_sweep`` empty) plus ``steps`` and ``settings``.
    """
    train_x, train_y, test_x, test_y = _probe_inputs(train_x, train_y, test_x, test_y)
    train_keep = train_y >= 0
    x, y = torch.from_numpy(train_x[train_keep]), torch.from_numpy(train_y[train_keep])
    if y.numel() == 0:
        raise ValueError("no labelled rows to fit DesignCLIP's probe on")
    if int(y.max()) >= num_classes:
        raise ValueError(f"label {int(y.max())} >= num_classes {num_classes}")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = torch.nn.Linear(x.shape[1], num_classes)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    steps = 0
    for _ in range(epochs):
        order = torch.randperm(y.numel(), generator=generator)
        for start in range(0, y.numel(), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(head(x[batch]), y[batch]).backward()
            optimizer.step()
            steps += 1
    with torch.no_grad():
        predictions = head(torch.from_numpy(test_x)).argmax(dim=1).numpy().astype(np.int64)
    result = _probe_result(predictions, test_y, num_classes, np.unique(y.numpy()), int(y.numel()),
                           int((~train_keep).sum()), None, [])
    return result | {
        "steps": steps,
        "settings": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": "Adam", "seed": seed},
    }
