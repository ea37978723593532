"""DeepPatent's benchmark folder (test and, when present, val lists) scored split by split, beside published numbers.

A folder of lists is what `designclip deeppatent build` writes under ``lists/`` (or DeepPatent's own release):
``test_query_patent.txt`` + ``test_db_patent.txt``, optionally ``val_query_patent.txt`` + ``val_db_patent.txt``.
Each split is scored with ``pipeline.evaluate.lists.evaluate_deeppatent_lists``: the official mAP (DeepPatent's
full-ranking AP), the PML mAP (pytorch-metric-learning's, at max_bin_count), P@1 and top-k side by side. The
published rows are copied from the papers and are never measured here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from designclip.pipeline.evaluate.evaluation import EvaluationError
from designclip.pipeline.evaluate.lists import evaluate_deeppatent_lists, list_patents
from designclip.pipeline.evaluate.per_view import per_view_variant

LIST_FILES = {"test": ("test_query_patent.txt", "test_db_patent.txt"),
              "val": ("val_query_patent.txt", "val_db_patent.txt")}
# The two systems this benchmark is read against, as their papers report them (other code, other preprocessing)
PUBLISHED_DEEPPATENT = (
    {"label": "PatentNet (Kucer et al., WACV 2022)", "split": "test", "map_official": 0.376, "map_pml": None,
     "p_at_1": None, "note": "published, not measured here"},
    {"label": "SwinV2 + ArcFace (Higuchi & Yanai, WPI 2023)", "split": "test", "map_official": None,
     "map_pml": 0.839, "p_at_1": 0.922, "note": "published, not measured here"},
)


def lists_folder(lists_dir: str | Path) -> Path:
    """The folder holding the list files: DIR itself, or DIR/lists of a `designclip deeppatent build` folder."""
    root = Path(lists_dir)
    for candidate in (root, root / "lists"):
        if (candidate / LIST_FILES["test"][0]).is_file():
            return candidate
    raise EvaluationError(f"{root}: no {LIST_FILES['test'][0]} here or under {root / 'lists'}: point "
                          "--deeppatent-lists at the lists of `designclip deeppatent build` (DIR/lists) or of "
                          "DeepPatent's release")


def benchmark_lists(lists_dir: str | Path) -> dict[str, dict[str, str]]:
    """{split: {query_list, db_list}} for test (required, both files) and val (when both of its files exist)."""
    folder = lists_folder(lists_dir)
    out: dict[str, dict[str, str]] = {}
    for split, (query, db) in LIST_FILES.items():
        have = [(folder / name).is_file() for name in (query, db)]
        if all(have):
            out[split] = {"query_list": str(folder / query), "db_list": str(folder / db)}
        elif any(have) or split == "test":
            missing = [name for name, ok in zip((query, db), have, strict=True) if not ok]
            raise EvaluationError(f"{folder}: {split} needs both {query} and {db}; missing {', '.join(missing)}")
    return out


def benchmark_patents(lists_dir: str | Path) -> set[str]:
    """Every patent any list of the folder names (what the training-overlap check compares with)."""
    out: set[str] = set()
    for pair in benchmark_lists(lists_dir).values():
        out |= list_patents(pair["query_list"], pair["db_list"])
    return out


def score_benchmark(encoder: Any, lists_dir: str | Path, image_root: str | Path, batch_size: int = 64,
                    progress: Callable[[int, int], None] | None = None, size: int = 512, margin: float = 0.03,
                    *, skip_missing: bool = False) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score every split of the folder: ({lists_dir, image_root, splits: {split: metrics}, per_view, published},
    {split or views_<split>: DIRA top10}).

    Each split's metrics carry ``p_at_1`` (= top-1 accuracy) beside both mAPs; a missing image is an error unless
    ``skip_missing`` (then its line is left out and counted in the split's ``missing_images``). ``per_view`` holds
    the per-FIG. variant when the lists belong to a `designclip deeppatent build` with rendered views ({} otherwise).
    """
    splits: dict[str, Any] = {}
    tops: dict[str, np.ndarray] = {}
    for split, pair in benchmark_lists(lists_dir).items():
        metrics, top = evaluate_deeppatent_lists(encoder, pair["query_list"], pair["db_list"], image_root,
                                                 batch_size, progress, size=size, margin=margin,
                                                 skip_missing=skip_missing)
        splits[split] = {**metrics, "split": split, "p_at_1": (metrics.get("top_k") or {}).get("1")}
        tops[split] = top
    per_view, view_tops = per_view_variant(encoder, lists_folder(lists_dir), batch_size, progress, size, margin,
                                           skip_missing)
    tops |= {f"views_{split}": top for split, top in view_tops.items()}
    section = {"lists_dir": str(lists_folder(lists_dir)), "image_root": str(image_root), "splits": splits,
               "per_view": per_view, "published": [dict(row) for row in PUBLISHED_DEEPPATENT]}
    return section, tops
