"""The train flow: a finished release -> a trained model folder (open_clip `local-dir:`), loss curve, metrics."""

from __future__ import annotations

from typing import Any

from designclip.flows.step import Run, Step, one
from designclip.pipeline.train.driver import TrainStageOptions, stats_of
from designclip.pipeline.train.loop import LoopSettings, TrainOptions
from designclip.storage import layout
from designclip.tasks.train import train_task
from prefect import flow
from prefect.artifacts import create_markdown_artifact


def train_markdown(stats: dict[str, Any]) -> str:
    last = stats.get("last") or {}
    terms = " | ".join(f"{k} {v:.4f}" for k, v in last.items() if k.startswith("loss"))
    state = "already trained" if stats.get("skipped") else ("finished" if stats.get("finished") else "stopped early")
    return "\n".join([
        f"Run `{stats['run']}` {state}: step {stats['step']} of {stats['total_steps']} on release "
        f"`{stats['record']['release']['version']}` ({stats['train_samples']} train views, {stats['patents']} patents)",
        "", f"Last log: {terms}", "",
        f"Model: `{stats.get('model_dir')}`  ", f"Loss curve: `{stats.get('loss_plot')}`  ",
        f"Metrics: `{stats.get('metrics')}`"])


@flow(name="train", log_prints=True)
def train_flow(release: str, run: str, data_root: str = layout.DEFAULT_DATA_ROOT, options: TrainOptions | None = None,
               loop: LoopSettings | None = None) -> dict[str, Any]:
    """Train DesignCLIP on a release (depends on the release stage); rerunning resumes or skips a finished run."""
    stage = TrainStageOptions(options or TrainOptions(), loop or LoopSettings())
    stats = stats_of(train_task(data_root, release, run, stage))
    create_markdown_artifact(train_markdown(stats), key=f"train-{run.lower().replace('.', '-').replace('_', '-')}",
                             description=f"Training run {run}")
    return stats


def _dag_call(r: Run) -> Any:
    return train_flow.fn(release=r.release, run=r.run, data_root=r.data_root, options=r.profile.train,
                         loop=r.profile.loop)


STEP = Step(_dag_call, one, lambda r, _: r.folder.path(layout.model_dir(r.run)))
