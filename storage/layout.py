"""Where every artefact lives under the data root; no other module builds these paths."""

from __future__ import annotations

import datetime as dt

TABLE_NAMES = ("patents", "figures", "sheets", "errors")
AREAS = ("raw", "images", "shards", "captions", "releases", "models", "embeddings", "indexes", "deeppatent")
"""The top folders that hold the bulk of a data root's bytes, in DAG order (what `status` sizes)."""

DEFAULT_DATA_ROOT = "./data"
"""Where the data lives when neither --data-root nor DESIGNCLIP_DATA_ROOT says otherwise."""
DEFAULT_PROFILE = "px512"
"""The render profile (view size) every stage reads and writes unless told another."""
DEFAULT_SHARD_SAMPLES = 1000
"""Samples per shard, for week shards and release shards alike."""
DEFAULT_SHARD_BYTES = 256 * 2**20
"""Bytes per shard (256 MiB): small enough to stream and retry, large enough for few files."""


def week_id(week: dt.date) -> str:
    """The unit id of one weekly archive, independent of its revision: `I20210105`."""
    return f"I{week:%Y%m%d}"


def raw_archive(week: dt.date, archive_name: str) -> str:
    return f"raw/{week:%Y}/{archive_name}"


def raw_manifest(week: dt.date, archive_name: str) -> str:
    """Sidecar written after a verified download: size, sha256, source URL (never the key)."""
    return f"{raw_archive(week, archive_name)}.json"


def download_ledger(week: dt.date, archive_name: str) -> str:
    """The dates an archive was downloaded (the Open Data Portal limits downloads per file and year)."""
    return f"{raw_archive(week, archive_name)}.downloads.json"


def table_file(table: str, week: dt.date) -> str:
    return f"{table}/{week_id(week)}.parquet"


def images_file(week: dt.date) -> str:
    """One uncompressed tar of the week's TIFF sheets; `sheets` rows point at byte ranges in it."""
    return f"images/{week_id(week)}.tar"


def stats_dir(stage: str) -> str:
    """The folder of a per-week stage's done markers, one per week."""
    return f"_stats/{stage}"


def stats_marker(stage: str, week: dt.date) -> str:
    """The per-unit stats JSON, written last: its presence means the unit is done."""
    return f"{stats_dir(stage)}/{week_id(week)}.json"


def class_table(name: str) -> str:
    return f"classes/{name}.parquet"


def shard_profile_dir() -> str:
    """Where every render profile's shards are (one folder per profile: `px512`, ...)."""
    return "shards"


def caption_root_dir() -> str:
    """Where every render profile's caption sets are (one folder per profile)."""
    return "captions"


def shard_dir(profile: str, week: dt.date) -> str:
    """Rendered WebDataset shards of one week under one render profile (e.g. `px512`)."""
    return f"shards/{profile}/{week_id(week)}"


def shard_tar(profile: str, week: dt.date, number: int) -> str:
    return f"{shard_dir(profile, week)}/{number:05d}.tar"


def shard_index(profile: str, week: dt.date, number: int) -> str:
    """Parquet: one row per sample (key -> patent, fig, view, bytes)."""
    return f"{shard_dir(profile, week)}/{number:05d}.parquet"


def shard_stats(profile: str, week: dt.date, number: int) -> str:
    """Per-shard stats JSON, written last: its presence means the shard is done."""
    return f"{shard_dir(profile, week)}/{number:05d}.stats.json"


def render_stage(profile: str) -> str:
    """Stage name of the render markers: `_stats/render/px512/I20210105.json`."""
    return f"render/{profile}"


def release_dir(version: str) -> str:
    return f"releases/{version}"


def preview_file(profile: str, week: dt.date) -> str:
    """Contact sheet of a rendered week (PNG), for people to look at."""
    return f"previews/{profile}/{week_id(week)}.png"


def release_file(version: str, name: str) -> str:
    """A file of a release by its name inside the release (the names SHA256SUMS and the wids indexes use)."""
    return f"{release_dir(version)}/{name}"


def release_shard_name(split: str, number: int) -> str:
    """`train/00000.tar`: uniform shards per split, numbered from 0 (brace-expandable for open_clip)."""
    return f"{split}/{number:05d}.tar"


def release_sizes_name(split: str) -> str:
    """open_clip_train reads `sizes.json` beside the shards: {"00000.tar": n, ...}."""
    return f"{split}/sizes.json"


def release_wids_name(split: str) -> str:
    """The wids shard index of a split; its shard urls are relative to the release folder."""
    return f"{split}.wids.json"


def release_marker(version: str) -> str:
    """The release's done marker, written last: without it a release folder is a crashed run's leftovers."""
    return release_file(version, "release.json")


def caption_set_dir(profile: str, caption_set: str) -> str:
    """One caption output (backend + model + prompt version + settings) of one render profile."""
    return f"captions/{profile}/{caption_set}"


def caption_set_record(profile: str, caption_set: str) -> str:
    """captioner.json: which backend, model, prompt version and settings made this set (never mixed)."""
    return f"{caption_set_dir(profile, caption_set)}/captioner.json"


def caption_dir(profile: str, caption_set: str, week: dt.date) -> str:
    return f"{caption_set_dir(profile, caption_set)}/{week_id(week)}"


def caption_file(profile: str, caption_set: str, week: dt.date, number: int) -> str:
    """Parquet: one row per sample of shard `number` (key -> caption or error, model, prompt, settings, seconds)."""
    return f"{caption_dir(profile, caption_set, week)}/{number:05d}.parquet"


def caption_part(profile: str, caption_set: str, week: dt.date, number: int, part: int) -> str:
    """A checkpoint of an unfinished shard's captions; merged into the caption file, then deleted."""
    return f"{caption_dir(profile, caption_set, week)}/{number:05d}.part{part:04d}.parquet"


def caption_stats(profile: str, caption_set: str, week: dt.date, number: int) -> str:
    """Per-shard caption stats JSON, written last: its presence means the shard's captions are done."""
    return f"{caption_dir(profile, caption_set, week)}/{number:05d}.stats.json"


def caption_preview(profile: str, caption_set: str, week: dt.date) -> str:
    """Views with their captions (PNG), for people to judge a caption set by eye."""
    return f"previews/{profile}/captions/{caption_set}/{week_id(week)}.png"


def train_run_dir(run: str) -> str:
    """A training run's working folder: run.json, checkpoints/, metrics.jsonl, loss.png, train.json (done)."""
    return f"runs/{run}"


def model_dir(run: str) -> str:
    """The exported model of a finished run: a folder plain open_clip loads (`local-dir:`)."""
    return f"models/{run}"


def embed_dir(release: str, model_tag: str) -> str:
    """Embeddings of one release by one model: encoder.json + per split, per release shard .npy/.parquet/.stats.json."""
    return f"embeddings/{release}/{model_tag}"


def embed_record(release: str, model_tag: str) -> str:
    """encoder.json: which model (and weights hash) made these vectors; a tag reused for another model is refused."""
    return f"{embed_dir(release, model_tag)}/encoder.json"


def embed_file(release: str, model_tag: str, split: str, number: int, kind: str) -> str:
    """`.../test/00000.image.npy` or `.text.npy`: L2-normalised rows, aligned with the shard's embed_meta rows."""
    return f"{embed_dir(release, model_tag)}/{split}/{number:05d}.{kind}.npy"


def embed_meta(release: str, model_tag: str, split: str, number: int) -> str:
    """Parquet, one row per sample of release shard `split/number` (key, patent, fig, view, classes, ok/error)."""
    return f"{embed_dir(release, model_tag)}/{split}/{number:05d}.parquet"


def embed_stats(release: str, model_tag: str, split: str, number: int) -> str:
    """Per-shard embedding stats JSON, written last: its presence means the shard's vectors are done."""
    return f"{embed_dir(release, model_tag)}/{split}/{number:05d}.stats.json"


def index_dir(release: str, model_tag: str, name: str) -> str:
    """A FAISS index over one kind of vectors (`image`, `text`): index.faiss, ids.parquet, card.json/.md (last)."""
    return f"indexes/{release}/{model_tag}/{name}"


GROWN_MARK = "@"  # release versions start with a letter or digit, so `indexes/@NAME` never names a release


def grown_index_root(name: str) -> str:
    """Every model's grown index called `name`: one index over several releases, grown by `index --append`."""
    return f"indexes/{GROWN_MARK}{name}"


def grown_index_dir(name: str, model_tag: str, kind: str) -> str:
    """A grown index over one kind of vectors: card.json (done marker, names the generation), gNNNNNN/ files."""
    return f"{grown_index_root(name)}/{model_tag}/{kind}"


def report_dir(release: str, model_tag: str) -> str:
    """One model's evaluation on a release: report.json (written last), report.md, plots, DIRA result.npy."""
    return f"reports/{release}/{model_tag}"


def comparison_report(release: str, name: str) -> str:
    """Markdown table of several models' reports side by side (ours beside a baseline)."""
    return f"reports/{release}/compare-{name}.md"


def report_file(release: str, model_tag: str, name: str) -> str:
    """A file of one model's report folder by name (report.md, recall.png, dira_result.npy, ...)."""
    return f"{report_dir(release, model_tag)}/{name}"


def comparison_plot(release: str, name: str) -> str:
    """Recall curves of the compared models in one picture, beside the comparison Markdown."""
    return f"reports/{release}/compare-{name}.png"


def failure_record(stage: str, week: dt.date) -> str:
    """A unit's last failure (bad archive): written when it fails, removed when it finishes."""
    return f"_failures/{stage}/{week_id(week)}.json"


def caption_profile_dir(profile: str) -> str:
    """Every caption set of one render profile."""
    return f"captions/{profile}"


def index_model_dir(release: str, model_tag: str) -> str:
    """All indexes (image, text) of one model on a release."""
    return f"indexes/{release}/{model_tag}"


def release_derived_dirs(release: str) -> tuple[str, ...]:
    """What is made from a release by any model: vectors, indexes, reports (gone when the release is rebuilt)."""
    return (f"embeddings/{release}", f"indexes/{release}", f"reports/{release}")


DEEPPATENT_STAGE = "deeppatent"
DEFAULT_DEEPPATENT_NAME = "deeppatent"
"""The name of a DeepPatent rebuild when none is given: `deeppatent/deeppatent/`."""


def deeppatent_dir(name: str) -> str:
    """A DeepPatent rebuild: images/ (as the lists name them), lists/, README.md, missing.json."""
    return f"{DEEPPATENT_STAGE}/{name}"


def deeppatent_file(name: str, rel: str) -> str:
    """A file of a DeepPatent rebuild by its path inside it (`images/I2018.../...png`, `lists/...`, `README.md`)."""
    return f"{deeppatent_dir(name)}/{rel}"


def deeppatent_stage(name: str) -> str:
    """Stage name of a rebuild's per-week markers: `_stats/deeppatent/{name}/I20181127.json`."""
    return f"{DEEPPATENT_STAGE}/{name}"
