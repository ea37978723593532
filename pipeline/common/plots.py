"""Pictures of numbers people would rather look at than read (loss curves, recall curves, confusion matrices)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402


def loss_curves(steps: Sequence[int], series: dict[str, Sequence[float]], title: str) -> bytes:
    """PNG: the total loss on top, each loss term below it, against the training step."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, constrained_layout=True)
    if "loss" in series:
        top.plot(steps, series["loss"], color="black", label="total")
    top.set_ylabel("loss")
    top.set_title(title)
    top.grid(alpha=0.3)
    for name, values in series.items():
        if name != "loss":
            bottom.plot(steps, values, label=name)
    bottom.set_xlabel("step")
    bottom.set_ylabel("term (unweighted)")
    bottom.grid(alpha=0.3)
    if len(series) > 1:
        bottom.legend(loc="upper right", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _png(fig: plt.Figure) -> bytes:
    """The figure as PNG bytes, closed afterwards (pyplot keeps every open figure alive otherwise)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def recall_curves(panels: dict[str, dict[str, tuple[Sequence[int], Sequence[float]]]], title: str = "") -> bytes:
    """PNG: one panel per metric (R@k text->image, image->text, DeepPatent top-k), one line per model, k log-scaled."""
    names = [name for name, lines in panels.items() if lines] or ["(no data)"]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False, constrained_layout=True)
    for ax, name in zip(axes[0], names, strict=True):
        for i, (label, (ks, values)) in enumerate(panels.get(name, {}).items()):
            # marker and dash differ per model, so equal curves stay visible on top of each other
            ax.plot(list(ks), [float("nan") if v is None else 100.0 * v for v in values], label=label,
                    marker="osv^D"[i % 5], linestyle=("-", "--", ":", "-.")[i % 4], markersize=7 - i % 3 * 1.5)
        ax.set_xscale("log")
        ax.set_xlabel("k")
        ax.set_ylabel("%")
        ax.set_ylim(0, 100)
        ax.set_title(name)
        ax.grid(alpha=0.3, which="both")
        if panels.get(name):
            ax.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    return _png(fig)


def confusion_matrix_plot(matrices: dict[str, Sequence[Sequence[float]]], codes: Sequence[str],
                          title: str = "") -> bytes:
    """PNG: one heat map per method, rows = true class normalised to 1 (empty rows stay blank), codes on both axes."""
    import numpy as np

    items = list(matrices.items()) or [("(no data)", np.zeros((len(codes), len(codes))))]
    size = max(4.0, 0.28 * len(codes) + 2.0)
    fig, axes = plt.subplots(1, len(items), figsize=(size * len(items) + 1.0, size), squeeze=False,
                             constrained_layout=True)
    image = None
    for ax, (name, matrix) in zip(axes[0], items, strict=True):
        m = np.asarray(matrix, dtype=float)
        totals = m.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            norm = np.where(totals > 0, m / totals, np.nan)
        image = ax.imshow(norm, vmin=0.0, vmax=1.0, cmap="Blues", interpolation="nearest")
        if len(codes) <= 20:  # small matrices: the share in each non-empty cell
            for (i, j), v in np.ndenumerate(norm):
                if v > 0:
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if v > 0.6 else "black")
        ax.set_xticks(range(len(codes)), list(codes), rotation=90, fontsize=7)
        ax.set_yticks(range(len(codes)), list(codes), fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="fraction of the true class")
    if title:
        fig.suptitle(title)
    return _png(fig)
