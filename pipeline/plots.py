"""Pictures of numbers people would rather look at than read (loss curves)."""

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
