"""`liandong`: the operator CLI (typer). Every command has --help."""

from __future__ import annotations

import asyncio
import enum
import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from rich.console import Console
from rich.table import Table
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

from liandong import settings as settings_mod

console = Console()


class _SubApp(TyperCommand):
    """A sub-command group imported only when it is run (or its own --help is asked): the
    services' CLIs pull in SQLAlchemy, gRPC and the codecs, which `liandong --help` and
    `liandong hj212 decode` do not need (issue 12: every command used to import them all)."""

    def __init__(self, name: str, target: str, help: str) -> None:
        super().__init__(name=name, help=help, short_help=help)
        self.target = target
        self._loaded: click.Command | None = None

    def load(self) -> click.Command:
        if self._loaded is None:
            module, attr = self.target.split(":")
            sub = getattr(importlib.import_module(module), attr)
            self._loaded = typer.main.get_command(sub)
        return self._loaded

    @property
    def commands(self) -> dict[str, click.Command]:
        return dict(getattr(self.load(), "commands", {}))

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        return self.load().make_context(info_name, args, parent=parent, **extra)


# name -> (module:typer app, help); each imported on use
SUB_APPS = {
    "hj212": ("gateway.entrypoints.hj212_cli:app", "HJ 212 frames: decode captures to JSON."),
    "casefile": (
        "casefile.entrypoints.cli:casefile_app",
        "Case file integrity: verify the audit chain, export bundles.",
    ),
    "tokens": (
        "casefile.entrypoints.cli:tokens_app",
        "Bearer tokens for the casefile API and services' own key pairs.",
    ),
    "alerts": ("alerts.entrypoints.replay_cli:app", "Alert judgement: replay a capture."),
    "people": (
        "dispatch.entrypoints.people_cli:people_app",
        "People of the roster: passwords for signing in to the field app and console.",
    ),
}


class _Root(TyperGroup):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, (target, text) in SUB_APPS.items():
            self.commands[name] = _SubApp(name, target, text)


app = typer.Typer(
    cls=_Root,
    help="Liandong (联动): online monitoring linked to field enforcement.",
    no_args_is_help=True,
)
topics_app = typer.Typer(help="Kafka topics of the platform.", no_args_is_help=True)
registry_app = typer.Typer(
    help="The source registry: enterprises, outlets, marks, roster.", no_args_is_help=True
)
cases_app = typer.Typer(help="Case files (casefile service over gRPC).", no_args_is_help=True)
run_app = typer.Typer(help="Run one service in the foreground.", no_args_is_help=True)
stack_app = typer.Typer(
    help="All services in the background (make up / make down).", no_args_is_help=True
)
app.add_typer(topics_app, name="topics")
app.add_typer(registry_app, name="registry")
app.add_typer(cases_app, name="cases")
app.add_typer(run_app, name="run")
app.add_typer(stack_app, name="stack")


@topics_app.command("ensure")
def topics_ensure() -> None:
    """Create every topic with its partitions, retention and compaction (idempotent)."""
    from liandong.topics import ensure_topics

    outcomes = ensure_topics(settings_mod.load())
    table = Table("topic", "action", "detail")
    for o in outcomes:
        table.add_row(o.topic, o.action, o.detail)
    console.print(table)


@topics_app.command("list")
def topics_list() -> None:
    """Show the topic catalogue: key, partitions and configuration of each topic."""
    from liandong.topics import CATALOGUE

    s = settings_mod.load()
    table = Table("topic", "key", "partitions", "config", "purpose")
    for spec in CATALOGUE:
        config = ", ".join(f"{k}={v}" for k, v in spec.config.items())
        table.add_row(
            s.topic(spec.name), spec.key, str(spec.partitions or s.partitions), config, spec.purpose
        )
    console.print(table)


@registry_app.command("load")
def registry_load(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="registry YAML")],
    dry_run: Annotated[bool, typer.Option(help="validate only, publish nothing")] = False,
) -> None:
    """Validate a registry YAML file and publish what changed to the compacted registry topics."""
    import yaml
    from pydantic import ValidationError

    from liandong.registry.document import RegistryDocument
    from liandong.registry.topics_io import publish

    raw = file.read_bytes()
    try:
        document = RegistryDocument.model_validate(yaml.safe_load(raw))
    except (ValidationError, yaml.YAMLError) as err:
        console.print(f"[red]invalid registry file {file}[/red]\n{err}")
        raise typer.Exit(2) from err
    if dry_run:
        console.print(f"valid: {len(document.entities())} entities")
        return
    report = asyncio.run(publish(settings_mod.load(), document, raw))
    table = Table("kind", "published", "unchanged", "removed")
    for kind in ("enterprise", "outlet", "mark", "person"):
        table.add_row(
            kind,
            str(report.published.get(kind, 0)),
            str(report.unchanged.get(kind, 0)),
            str(report.removed.get(kind, 0)),
        )
    console.print(table)


@registry_app.command("show")
def registry_show() -> None:
    """Print the registry as the services see it (materialised from the topics)."""
    import json

    from liandong.registry.topics_io import RegistryView, read_all

    _ = RegistryView
    entities = asyncio.run(read_all(settings_mod.load()))
    print(json.dumps(entities, ensure_ascii=False, indent=2))


@cases_app.command("list")
def cases_list(
    state: Annotated[str, typer.Option(help="only cases in this state")] = "",
    county: Annotated[str, typer.Option(help="jurisdiction code prefix")] = "",
    page_size: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON object per case (full ids, for scripts)")
    ] = False,
) -> None:
    """List case files from the casefile service (LIANDONG_TOKEN: the bearer token)."""

    import grpc

    from liandong.tokens.operator import operator_metadata
    from liandong.v1 import casefile_pb2, casefile_pb2_grpc

    metadata = operator_metadata()  # LIANDONG_TOKEN, else an operator's token (local key)

    async def fetch() -> list[casefile_pb2.Case]:
        async with grpc.aio.insecure_channel(settings_mod.load().casefile_grpc) as channel:
            stub = casefile_pb2_grpc.CaseFileStub(channel)
            out: list[casefile_pb2.Case] = []
            token = ""
            while True:
                page = await stub.ListCases(
                    casefile_pb2.ListCasesRequest(
                        state=state, county=county, page_size=page_size, page_token=token
                    ),
                    timeout=10,
                    metadata=metadata,
                )
                out.extend(page.cases)
                token = page.next_page_token
                if not token:
                    return out

    try:
        cases = asyncio.run(fetch())
    except grpc.RpcError as err:
        console.print(f"[red]casefile: {err.code().name}: {err.details()}[/red]")
        raise typer.Exit(1) from err
    if as_json:
        import json

        from google.protobuf.json_format import MessageToDict

        for c in cases:
            print(json.dumps(MessageToDict(c), ensure_ascii=False))
        return
    table = Table("case", "state", "enterprise", "outlet", "county", "team", "opened")
    table.columns[0].overflow = "fold"  # a case id is never cut short
    table.columns[0].no_wrap = False
    table.columns[0].min_width = 36
    for c in cases:
        table.add_row(
            c.case_id,
            c.state,
            c.enterprise_id,
            c.outlet_id,
            c.county,
            ", ".join(f"{p.name} ({p.role.lower()})" for p in c.team),
            c.opened_at.ToDatetime().isoformat(timespec="seconds") + "Z",
        )
    console.print(table)
    console.print(f"{len(cases)} case(s)")


@run_app.command("gateway")
def run_gateway() -> None:
    """HJ 212 TCP server for data loggers (LIANDONG_GATEWAY_PORT)."""
    from gateway.bootstrap import run

    run(settings_mod.load())


@run_app.command("alerts")
def run_alerts() -> None:
    """The alerts faust worker."""
    from alerts.entrypoints.worker import run

    sys.argv = [sys.argv[0], "worker", "--loglevel", "info"]
    run(settings_mod.load())


@run_app.command("dispatch")
def run_dispatch() -> None:
    """The dispatch service: alerts to inspection tasks, teams and cases."""
    from dispatch.bootstrap import run

    run(settings_mod.load())


@run_app.command("casefile")
def run_casefile() -> None:
    """The casefile gRPC server (LIANDONG_CASEFILE_GRPC, LIANDONG_CASEFILE_DB)."""
    from casefile.bootstrap import run

    run(settings_mod.load())


@stack_app.command("up")
def stack_up() -> None:
    """Start every service in the background on the default topics; state in .state/up."""
    from liandong.stack import Stack

    stack = Stack(settings_mod.ROOT / ".state" / "up", settings_mod.load())
    stack.state_dir.mkdir(parents=True, exist_ok=True)
    if any(
        (stack.state_dir / f"{name}.pid").exists()
        for name in ("gateway", "alerts", "dispatch", "casefile")
    ):
        console.print("already up (make down first)")
        raise typer.Exit(0)
    stack.start()
    try:
        asyncio.run(stack.wait_ready())
    except (RuntimeError, TimeoutError) as err:
        stack.stop()  # leave nothing half-started behind
        console.print(f"[red]stack did not come up[/red]: {err}")
        raise typer.Exit(1) from err
    s = stack.settings
    console.print(
        f"up: gateway tcp {s.gateway_host}:{s.gateway_port}, casefile gRPC {s.casefile_grpc}, "
        f"dispatch http {s.dispatch_http_host}:{s.dispatch_http_port}; logs in {stack.state_dir}"
    )
    _print_sign_ins(stack.state_dir, s)


def _print_sign_ins(state_dir: Path, s: settings_mod.Settings) -> None:
    """The field app's address and how each demo person signs in (random passwords, made
    once and kept in the state folder, never constants)."""
    from dispatch.entrypoints.people_cli import ensure_demo_passwords

    kept = state_dir / "demo-passwords.txt"
    registry = settings_mod.ROOT / "deploy" / "registry" / "demo.yaml"
    rows = ensure_demo_passwords(registry, s.dispatch_db, kept)
    base = f"http://{s.dispatch_http_host}:{s.dispatch_http_port}"
    console.print(f"field app: {base}/   managers' console: {base}/console/")
    table = Table("person id", "name", "roles", "password")
    for r in rows:
        table.add_row(r.person_id, r.name, r.roles, r.password or f"(set earlier: {kept})")
    console.print(table)
    console.print("another password: liandong people set-password ID")


@stack_app.command("down")
def stack_down() -> None:
    """Stop the services started by `stack up`."""
    import os
    import signal
    import time

    folder = settings_mod.ROOT / ".state" / "up"
    for pidfile in sorted(folder.glob("*.pid")):
        pid = int(pidfile.read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.2)
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pidfile.unlink()
        console.print(f"stopped {pidfile.stem}")


class GroupBy(enum.StrEnum):
    county = "county"
    priority = "priority"
    route = "route"
    all = "all"


def _division_code(value: str, option: str) -> str:
    """A division code prefix (digits) or empty; anything else is a usage error (exit 2)."""
    if value and not (value.isascii() and value.isdigit()):
        raise typer.BadParameter(f"{value!r} is not a division code (digits, e.g. 3201)")
    return value


@app.command("response-times")
def response_times(
    by: Annotated[GroupBy, typer.Option(help="how to group the tasks")] = GroupBy.county,
    county: Annotated[
        str,
        typer.Option(
            help="only this jurisdiction code prefix (digits, e.g. 3201)",
            callback=lambda v: _division_code(v, "--county"),
        ),
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """How fast alarms were answered: p50/p90/max per stage, from alerts and dispatch events."""
    import json

    from liandong.demo import read_topic
    from liandong.response_times import STAGES, summarise, timelines
    from liandong.topics import ALERTS_EVENTS, DISPATCH_EVENTS
    from liandong.v1 import alerts_pb2, dispatch_pb2

    s = settings_mod.load()

    async def load() -> tuple[list[bytes], list[bytes]]:
        return await read_topic(s, s.topic(ALERTS_EVENTS)), await read_topic(
            s, s.topic(DISPATCH_EVENTS)
        )

    raw_alerts, raw_dispatch = asyncio.run(load())
    tasks = [
        t
        for t in timelines(
            map(alerts_pb2.AlertEvent.FromString, raw_alerts),
            map(dispatch_pb2.DispatchEvent.FromString, raw_dispatch),
        )
        if t.county.startswith(county)
    ]
    rows = summarise(tasks, by=by.value)
    if as_json:
        for row in rows:
            print(json.dumps(row.__dict__, ensure_ascii=False))
        return
    table = Table(by.value, "stage", "tasks", "p50", "p90", "max", title="Response times")
    for row in rows:
        table.add_row(
            row.group,
            row.stage,
            str(row.count),
            *(f"{v / 60:.1f} min" for v in (row.p50_s, row.p90_s, row.max_s)),
        )
    console.print(table)
    breached = sum(1 for t in tasks if t.breaches)
    still_open = sum(1 for t in tasks if t.open)
    console.print(
        f"{len(tasks)} task(s), {still_open} open, {breached} with an SLA breach; "
        f"stages: " + ", ".join(f"{n} ({a} to {b})" for n, a, b in STAGES)
    )


@app.command("simulate")
def simulate(
    scenario: Annotated[
        str,
        typer.Option(
            help="normal | exceedance | flatline | dilution | zero | offline | maintenance | "
            "calibration | backfill | parameter"
        ),
    ] = "exceedance",
    minutes: Annotated[int, typer.Option(min=1, help="minutes of data per logger")] = 5,
    registry: Annotated[Path, typer.Option(help="registry YAML naming the loggers")] = Path(
        "deploy/registry/demo.yaml"
    ),
    loggers: Annotated[
        int, typer.Option(min=0, help="generate a registry of N loggers (0: use --registry)")
    ] = 0,
    write_registry: Annotated[
        Path | None, typer.Option(help="where to write the generated registry (with --loggers)")
    ] = None,
    realtime: Annotated[bool, typer.Option(help="also send real-time data (2011)")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each 9014")] = 10.0,
) -> None:
    """Station simulator: data loggers sending HJ 212 data over TCP, waiting for acks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from gateway.simulator.station import run_scenario, write_synthetic_registry

    s = settings_mod.load()
    if loggers:
        registry = write_synthetic_registry(
            write_registry or Path(f".state/registry-{loggers}.yaml"), loggers
        )
        console.print(f"wrote {registry}: load it with `liandong registry load {registry}`")
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"{scenario}: frames acked or given up", total=None)
        try:
            report = asyncio.run(
                run_scenario(
                    registry,
                    s.gateway_host,
                    s.gateway_port,
                    scenario,
                    minutes,
                    realtime=realtime,
                    timeout=timeout,
                    progress=lambda n: progress.advance(task, n),
                )
            )
        except OSError as err:  # refused, unreachable, reset: the gateway is not there
            progress.stop()
            console.print(
                f"[red]cannot reach the gateway at {s.gateway_host}:{s.gateway_port}[/red]: "
                f"{err.strerror or err} (is it running? `make up`)"
            )
            raise typer.Exit(3) from None
    console.print(report)


@app.command("demo")
def demo(
    keep: Annotated[bool, typer.Option(help="leave the services running (make up)")] = False,
) -> None:
    """Start every service, run an exceedance scenario and show each stage with its timing."""
    from liandong.demo import run_demo

    raise typer.Exit(run_demo(keep_running=keep))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
