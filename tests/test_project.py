"""Promises the repository makes: CI runs the README's test command, the compose file is valid, tests mirror code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quickstart)


def test_readme_has_two_quickstart_commands_and_ci_runs_the_test_one() -> None:
    commands = _quickstart_commands()
    assert len(commands) == 2 and "designclip demo" in commands[0] and "pytest" in commands[1]
    ci_lines = (ROOT / ".ci/run").read_text().splitlines()
    assert commands[1] in ci_lines


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_parses_with_its_services() -> None:
    compose = _compose()
    assert {"postgres", "prefect-server", "pipeline", "search", "worker", "minio", "minio-init"} <= set(
        compose["services"])
    search = compose["services"]["search"]
    assert search["command"][:3] == ["serve", "--host", "0.0.0.0"] and search["ports"][0].endswith(":8765:8765")
    assert search["profiles"] == ["search"]
    server = compose["services"]["prefect-server"]
    assert "prefect server start" in server["command"]
    assert server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")


def test_compose_references_resolve() -> None:
    """What `docker compose config` would reject: unknown depends_on targets, undeclared named volumes."""
    compose = _compose()
    services, volumes = compose["services"], set(compose.get("volumes") or {})
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for target in service.get("depends_on") or []:
            assert target in services and target != name, f"{name} depends on unknown service {target}"
        for mount in service.get("volumes") or []:
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                assert source in volumes, f"{name} mounts undeclared volume {source}"


def test_compose_interpolations_have_defaults() -> None:
    """`docker compose config` works with no .env: every ${VAR} has a default and no bare $VAR slips in."""
    text = (ROOT / "docker-compose.yml").read_text()
    variables = re.findall(r"(?<!\$)\$\{([^}]*)\}", text)
    assert variables and all(":-" in v for v in variables), [v for v in variables if ":-" not in v]
    assert not re.findall(r"(?<!\$)\$[A-Za-z_]", text)


def test_compose_worker_has_the_gpu_the_pool_and_the_object_store() -> None:
    compose = _compose()
    services = compose["services"]
    worker = services["worker"]
    assert worker["build"] == "." and worker["entrypoint"] == ["prefect"]
    assert worker["command"][:3] == ["worker", "start", "--pool"] and "designclip-pool" in worker["command"][3]
    assert {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]} in \
        worker["deploy"]["resources"]["reservations"]["devices"]
    pools = {d["work_pool"]["name"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    assert pools == {"designclip-pool"}
    assert services["minio"]["image"].startswith("minio/minio") and services["minio-init"]["image"].startswith(
        "minio/mc")
    bucket = "${DESIGNCLIP_BUCKET:-designclip}"
    assert f"mc mb --ignore-existing store/{bucket}" in services["minio-init"]["command"][0]
    for name in ("pipeline", "worker", "search"):
        env = services[name]["environment"]
        assert env["DESIGNCLIP_DATA_ROOT"] == "${DESIGNCLIP_DATA_ROOT:-s3://designclip/data}", name
        assert env["FSSPEC_S3_ENDPOINT_URL"].endswith("http://minio:9000}") and env["AWS_ACCESS_KEY_ID"], name
        assert services[name]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert services["pipeline"]["command"][:2] == ["schedule", "--apply"]


def _compose_command() -> tuple[list[str] | None, str]:
    """`docker compose` (the plugin) or the standalone `docker-compose`, whichever runs here; else why not."""
    import shutil
    import subprocess

    reasons = []
    for cmd in (["docker", "compose"], ["docker-compose"]):
        exe = shutil.which(cmd[0])
        if exe is None:
            reasons.append(f"no {cmd[0]} executable")
            continue
        version = subprocess.run([exe, *cmd[1:], "version"], capture_output=True, text=True, check=False)
        if version.returncode == 0:
            return [exe, *cmd[1:]], ""
        reasons.append(f"{' '.join(cmd)} version failed: {(version.stderr or version.stdout).strip()[:120]}")
    return None, "; ".join(reasons)


def test_docker_compose_config_accepts_the_file() -> None:
    """The real check where Docker Compose exists, with no .env and none of the file's variables set."""
    import os
    import subprocess

    import pytest

    cmd, why = _compose_command()
    if cmd is None:
        pytest.skip(f"docker compose config cannot run here ({why}); the yaml checks above still ran")
    done = subprocess.run([*cmd, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
                          capture_output=True, text=True, check=False, cwd=ROOT,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")})
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------------------- tests mirror the code

# Where each module's tests live: pipeline/<stage>/<m>.py -> tests/pipeline/<stage>/test_<m>.py, storage/<m>.py ->
# tests/storage/test_<m>.py, tasks/ and flows/ alike, designclip/cli/<m>.py -> tests/cli/test_<m>.py. A file named
# test_<m>_<aspect>.py belongs to <m> too (test_shard_llava.py tests shard.py with the llava backend).
MIRRORED = ("pipeline", "storage", "tasks", "flows", "designclip/cli")

# Modules without a test file of their own: each is tested through the named file (what it exercises there is in the
# comment). A module that gets its own mirrored test file leaves this list; the test below fails on stale entries.
TESTED_ELSEWHERE = {
    # common: the ground floor, exercised by the stages that use it
    "pipeline/common/contact_sheet.py": "tests/pipeline/index/test_search.py",  # hits_sheet's labelled cells
    "pipeline/common/gray_sheet.py": "tests/pipeline/render/test_patent_views.py",  # decode_sheet's errors and pixels
    "pipeline/common/loader_workers.py": "tests/pipeline/caption/test_shard_llava.py",  # workers after a flow
    "pipeline/common/plots.py": "tests/pipeline/evaluate/test_report.py",  # recall and confusion PNGs
    "pipeline/common/splits.py": "tests/pipeline/release/test_build.py",  # ratios, one split per patent
    "pipeline/common/stage.py": "tests/pipeline/render/test_driver.py",  # and every other stage's test_driver.py
    "pipeline/common/union_find.py": "tests/pipeline/render/test_near_duplicates.py",  # exact grouping
    "pipeline/dag/stages.py": "tests/pipeline/dag/test_forget.py",  # invalidate; stages_between in test_run_profile
    # ingest
    "pipeline/ingest/archive.py": "tests/pipeline/ingest/test_week_archive.py",  # streamed members, rejects
    "pipeline/ingest/archives.py": "tests/pipeline/ingest/test_download.py",  # WeeklyArchive names and paths
    "pipeline/ingest/class_tables.py": "tests/cli/test_main.py",  # the demo's classes/*.parquet
    "pipeline/ingest/figure_sequences.py": "tests/pipeline/ingest/test_figure_rows.py",  # GUI image sequences
    "pipeline/ingest/mirror.py": "tests/flows/test_ingest.py",  # the BDSS mirror every ingest test serves
    "pipeline/ingest/sample.py": "tests/flows/test_pipeline.py",  # the bundled sample as a mirror
    "pipeline/ingest/sources.py": "tests/pipeline/ingest/test_driver.py",  # weeks listed by their downloads
    # render
    "pipeline/render/label_candidates.py": "tests/pipeline/render/test_fig_labels.py",  # text lines found
    "pipeline/render/label_erase.py": "tests/pipeline/render/test_fig_labels.py",  # drawing lines kept
    "pipeline/render/metadata_caption.py": "tests/pipeline/render/test_patent_views.py",  # caption_metadata
    "pipeline/render/pool.py": "tests/pipeline/render/test_driver.py",  # workers=2, same shards
    "pipeline/render/sheet_image.py": "tests/pipeline/render/test_patent_views.py",  # decode_sheet, upright
    "pipeline/render/view_image.py": "tests/pipeline/render/test_near_duplicates.py",  # crop_box, square_view
    # caption
    "pipeline/caption/backends.py": "tests/pipeline/caption/test_llava.py",  # make_captioner (and test_vllm)
    "pipeline/caption/captioner.py": "tests/pipeline/caption/test_llava.py",  # caption_set_id, the interface
    "pipeline/caption/loaded.py": "tests/pipeline/caption/test_shard.py",  # load_captioner, prepare_set
    "pipeline/caption/metadata.py": "tests/pipeline/caption/test_shard.py",  # the CPU backend on real shards
    "pipeline/caption/options.py": "tests/pipeline/caption/test_driver.py",  # worker_argv parses back
    "pipeline/caption/prompts.py": "tests/pipeline/caption/test_llava.py",  # llava_prompt, clean_caption
    "pipeline/caption/tiny_llava.py": "tests/pipeline/caption/test_llava.py",  # the tiny LLaVA every test loads
    # release
    "pipeline/release/tally.py": "tests/pipeline/release/test_build.py",  # counts reconcile with the markers
    # train
    "pipeline/train/export.py": "tests/pipeline/train/test_model.py",  # export, reload, interrupted export
    "pipeline/train/loop.py": "tests/pipeline/train/test_driver.py",  # exact resume, kill -9, DDP
    "pipeline/train/model_configs.py": "tests/pipeline/train/test_driver.py",  # the bundled tiny config
    "pipeline/train/options.py": "tests/pipeline/train/test_gather.py",  # idle_parameters, caption-only
    # embed, index, evaluate
    "pipeline/embed/encoder_cache.py": "tests/pipeline/embed/test_driver_release.py",  # one encoder per process
    "pipeline/embed/summary.py": "tests/flows/test_embed.py",  # the summary artifact
    "pipeline/embed/vectors.py": "tests/pipeline/embed/test_driver_release.py",  # alignment, bad drawings
    "pipeline/index/inputs.py": "tests/pipeline/index/test_driver.py",  # unreadable rows left out
    "pipeline/index/synthetic.py": "tests/pipeline/index/test_faiss_index.py",  # the clustered test vectors
    "pipeline/evaluate/inputs.py": "tests/flows/test_evaluate.py",  # the baseline embedded first
    "pipeline/evaluate/prompts.py": "tests/pipeline/evaluate/test_driver.py",  # a model's prompts and record
    # storage
    "storage/captions.py": "tests/pipeline/caption/test_shard.py",  # set records, markers, resume
    "storage/eval_inputs.py": "tests/pipeline/evaluate/test_overlap.py",  # split_patents
    "storage/layout.py": "tests/pipeline/dag/test_forget.py",  # every path a forced stage removes
    "storage/schemas.py": "tests/pipeline/ingest/test_week_archive.py",  # the tables written and read back
    "storage/tables.py": "tests/storage/test_folder.py",  # week tables on a local folder and an fsspec URL
    "storage/train_runs.py": "tests/pipeline/train/test_driver.py",  # checkpoints, settings, remote roots
    "storage/vocabulary.py": "tests/pipeline/release/test_options.py",  # ReleaseError (CaptionRequest: test_llava)
    "storage/webdataset.py": "tests/storage/test_shard_roller.py",  # member names, tar sizes
    # tasks: thin Prefect tasks, run by their flow's tests
    "tasks/caption.py": "tests/flows/test_caption.py",
    "tasks/deeppatent.py": "tests/flows/test_deeppatent.py",
    "tasks/embed.py": "tests/flows/test_embed.py",
    "tasks/evaluate.py": "tests/flows/test_evaluate.py",
    "tasks/index.py": "tests/flows/test_index.py",
    "tasks/ingest.py": "tests/flows/test_ingest.py",
    "tasks/release.py": "tests/flows/test_release.py",
    "tasks/render.py": "tests/flows/test_render.py",
    "tasks/runners.py": "tests/scale/test_dask_render.py",  # threads and a local Dask cluster, same bytes
    "tasks/train.py": "tests/flows/test_train.py",
    # the command line
    "designclip/cli/caption_worker.py": "tests/pipeline/caption/test_shard.py",  # two worker processes
    "designclip/cli/printers.py": "tests/cli/test_main.py",  # what the demo prints
    "designclip/cli/search_app.py": "tests/cli/test_serve.py",  # its routes through a real server (and browser)
    "designclip/cli/status.py": "tests/storage/test_status.py",  # status as table, JSON and Markdown
}


def _modules() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for top in MIRRORED for p in (ROOT / top).rglob("*.py")
                  if p.name != "__init__.py" and "__pycache__" not in p.parts)


def _test_folder(module: str) -> str:
    folder = module.rsplit("/", 1)[0]
    return "tests/cli" if folder == "designclip/cli" else f"tests/{folder}"


def _owners() -> dict[str, str | None]:
    """Each test file under a mirrored folder -> the module it belongs to (the longest matching name), or None."""
    modules = _modules()
    folders = {_test_folder(m) for m in modules}
    owners: dict[str, str | None] = {}
    for folder in sorted(folders):
        for path in sorted((ROOT / folder).glob("test_*.py")):
            name = path.stem.removeprefix("test_")
            mine = [m for m in modules if _test_folder(m) == folder
                    and (name == Path(m).stem or name.startswith(Path(m).stem + "_"))]
            owners[f"{folder}/{path.name}"] = max(mine, key=len) if mine else None
    return owners


def test_every_module_has_a_test_file_at_its_mirrored_path() -> None:
    owners = _owners()
    mirrored = {m for m in owners.values() if m}
    missing = [m for m in _modules() if m not in mirrored and m not in TESTED_ELSEWHERE]
    assert not missing, f"modules without tests/<same path>/test_<module>.py (add one, or a TESTED_ELSEWHERE entry " \
                        f"naming where they are tested): {missing}"
    orphans = [t for t, m in owners.items() if m is None]
    assert not orphans, f"test files in the mirrored tree that match no module (rename after the module): {orphans}"
    stale = {m: t for m, t in TESTED_ELSEWHERE.items() if m in mirrored or m not in _modules()
             or not (ROOT / t).is_file()}
    assert not stale, f"TESTED_ELSEWHERE entries whose module has its own test file now, is gone, or whose test " \
                      f"file is gone: {stale}"
