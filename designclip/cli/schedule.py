"""`designclip schedule [--apply]`: show, then register, the scheduled deployments that prefect.yaml declares.

prefect.yaml is the one place the deployments are written down. `--apply` registers each of them as a Prefect
`RunnerDeployment` (`flow.to_deployment(..., entrypoint_type=MODULE_PATH)` then `prefect.deploy(build=False,
push=False)`): no image is built or pushed and no code is uploaded; a worker imports `flows.scheduled` from the
installed project (the Dockerfile's image), wherever its checkout lives.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
from pathlib import Path
from typing import Any

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"
DEFAULT_POOL = "designclip-pool"


class ScheduleConfigError(ValueError):
    """prefect.yaml declares something `designclip schedule` cannot register."""


def load_deployments(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The `deployments:` of a prefect.yaml, each checked for a name, an entrypoint and cron/rrule schedules."""
    import yaml

    if not path.is_file():
        raise ScheduleConfigError(f"{path}: no prefect.yaml (give --file, or run from a source checkout)")
    deployments = (yaml.safe_load(path.read_text()) or {}).get("deployments") or []
    if not deployments:
        raise ScheduleConfigError(f"{path}: no deployments")
    for d in deployments:
        if not d.get("name") or ":" not in (d.get("entrypoint") or ""):
            raise ScheduleConfigError(f"{path}: each deployment needs a name and an entrypoint file.py:function ({d})")
        for s in d.get("schedules") or []:
            if ("cron" in s) == ("rrule" in s):
                raise ScheduleConfigError(f"{path}: deployment {d['name']}: each schedule is one cron or one rrule")
    return deployments


def module_entrypoint(entrypoint: str) -> str:
    """`flows/scheduled.py:yearly_flow` -> `designclip.flows.scheduled.yearly_flow` (what a worker imports)."""
    file, func = entrypoint.split(":", 1)
    module = file.removesuffix(".py").replace("/", ".").lstrip(".")
    if module.split(".", 1)[0] in ("flows", "tasks", "pipeline", "storage"):
        module = f"designclip.{module}"  # the top-level folders install as subpackages of designclip
    return f"{module}.{func}"


def load_flow(entrypoint: str):
    """The flow object an entrypoint names, imported as a module like a worker will."""
    module, _, func = module_entrypoint(entrypoint).rpartition(".")
    return getattr(importlib.import_module(module), func)


def schedule_of(config: dict[str, Any]):
    """One prefect.yaml schedule entry as a `prefect.schedules.Schedule` (cron or rrule, timezone, active)."""
    from prefect.schedules import Cron, RRule

    common = {"timezone": config.get("timezone"), "active": config.get("active", True),
              "parameters": config.get("parameters") or {}}
    if "cron" in config:
        return Cron(config["cron"], day_or=config.get("day_or", True), **common)
    return RRule(config["rrule"], **common)


def next_runs(config: dict[str, Any], now: dt.datetime, n: int = 1) -> list[dt.datetime]:
    """When Prefect's scheduler would fire a schedule next after `now` (its own date arithmetic)."""
    from prefect.server.schemas.schedules import CronSchedule, RRuleSchedule

    tz = config.get("timezone")
    if "cron" in config:
        schedule = CronSchedule(cron=config["cron"], timezone=tz, day_or=config.get("day_or", True))
    else:
        schedule = RRuleSchedule(rrule=config["rrule"], timezone=tz)
    return list(asyncio.run(schedule.get_dates(n=n, start=now)))


def checked_parameters(deployment: dict[str, Any]) -> dict[str, Any]:
    """The deployment's parameters, validated against its flow's signature (a typo fails here, not in a year)."""
    flow = load_flow(deployment["entrypoint"])
    parameters = deployment.get("parameters") or {}
    flow.validate_parameters(parameters)
    return parameters


def describe(deployment: dict[str, Any], pool: str | None, now: dt.datetime) -> str:
    """What registering one deployment means, in a few lines."""
    flow = load_flow(deployment["entrypoint"])
    work_pool = deployment.get("work_pool") or {}
    lines = [f"{flow.name}/{deployment['name']}",
             f"  runs      {module_entrypoint(deployment['entrypoint'])} ({deployment['entrypoint']})",
             f"  pool      {pool or work_pool.get('name') or DEFAULT_POOL}, queue {work_pool.get('work_queue_name')}",
             f"  params    {json.dumps(checked_parameters(deployment), sort_keys=True)}"]
    for s in deployment.get("schedules") or []:
        what = f"cron {s['cron']!r}" if "cron" in s else f"rrule {s['rrule']!r}"
        state = "active" if s.get("active", True) else "inactive (resume it to turn it on)"
        nxt = next_runs(s, now)[0].isoformat(timespec="minutes")
        lines.append(f"  schedule  {what} {s.get('timezone') or 'UTC'}, {state}; next {nxt}")
    return "\n".join(lines)


def ensure_pool(name: str) -> bool:
    """Create the work pool as a `process` pool when the server has none of that name; True when created."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
            return True


def apply(deployments: list[dict[str, Any]], pool: str | None = None) -> list[Any]:
    """Register every deployment on PREFECT_API_URL (creating the pool when missing); their ids."""
    from prefect import deploy
    from prefect.deployments.runner import EntrypointType

    pools = {pool or (d.get("work_pool") or {}).get("name") or DEFAULT_POOL for d in deployments}
    if len(pools) != 1:
        raise ScheduleConfigError(f"deployments name several work pools {sorted(pools)}: give --pool")
    [pool_name] = pools
    created = ensure_pool(pool_name)
    print(f"work pool {pool_name}: {'created (process)' if created else 'exists'}")
    runners = []
    for d in deployments:
        work_pool = d.get("work_pool") or {}
        runners.append(load_flow(d["entrypoint"]).to_deployment(
            name=d["name"], description=d.get("description"), tags=d.get("tags"),
            parameters=checked_parameters(d), schedules=[schedule_of(s) for s in d.get("schedules") or []],
            work_queue_name=work_pool.get("work_queue_name"), job_variables=work_pool.get("job_variables"),
            entrypoint_type=EntrypointType.MODULE_PATH))
    ids = deploy(*runners, work_pool_name=pool_name, build=False, push=False, print_next_steps_message=False,
                 ignore_warnings=True)
    if len(ids) != len(runners):
        raise RuntimeError(f"only {len(ids)} of {len(runners)} deployments were registered (see the table above)")
    return ids


def with_relist_weeks(deployments: list[dict[str, Any]], weeks: int | None) -> list[dict[str, Any]]:
    """The deployments with `relist_weeks` (how many weeks before its window each run re-lists for revised
    archives) set to `weeks`; unchanged when None (prefect.yaml's value, else the flows' default)."""
    if weeks is None:
        return deployments
    if weeks < 0:
        raise ScheduleConfigError(f"--relist-weeks {weeks}: use 0 (do not re-list) or more")
    return [{**d, "parameters": {**(d.get("parameters") or {}), "relist_weeks": weeks}} for d in deployments]


def cmd_schedule(args: argparse.Namespace) -> int:
    from prefect.settings import PREFECT_API_URL

    deployments = with_relist_weeks(load_deployments(Path(args.file)), args.relist_weeks)
    now = dt.datetime.now(dt.UTC)
    print(f"{len(deployments)} deployments in {args.file}:\n")
    for d in deployments:
        print(describe(d, args.pool, now) + "\n")
    if not args.apply:
        print("Nothing registered: add --apply to register them on PREFECT_API_URL.")
        return 0
    api = PREFECT_API_URL.value()
    if not api:
        raise ScheduleConfigError("--apply needs PREFECT_API_URL (e.g. http://localhost:4200/api): without it the "
                                  "deployments would land on a throwaway embedded server")
    apply(deployments, args.pool)
    print(f"\nRegistered {len(deployments)} deployments on {api}. A worker runs them: "
          f"prefect worker start --pool {args.pool or DEFAULT_POOL}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    schedule = sub.add_parser("schedule", help="show (or --apply: register) the scheduled deployments of prefect.yaml")
    schedule.add_argument("--apply", action="store_true", help="register them on PREFECT_API_URL (no image build)")
    schedule.add_argument("--pool", help=f"work pool to run them on (default: prefect.yaml's, {DEFAULT_POOL})")
    schedule.add_argument("--file", default=str(PREFECT_YAML), help="the prefect.yaml to read (default: the project's)")
    schedule.add_argument("--relist-weeks", type=int, metavar="N",
                          help="weeks before each run's window re-listed for revised archives (_r1, _r2) that are "
                               "then ingested, rendered and captioned again (default 8; 0: off)")
    schedule.set_defaults(func=cmd_schedule)
