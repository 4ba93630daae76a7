"""`liandong people set-password ID`: the embedded sign-in's passwords (argon2 hashes in
dispatch's database, LIANDONG_DISPATCH_DB)."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from dispatch.adapters.credentials import CredentialStore
from dispatch.adapters.store import make_engine

people_app = typer.Typer(help="People of the roster: sign-in passwords.", no_args_is_help=True)


@people_app.callback()
def people() -> None:
    """People of the roster: sign-in passwords (a group, so `people set-password ID` keeps its
    subcommand name however the CLI loads it)."""


def _store() -> CredentialStore:
    from liandong.settings import Settings

    url = Settings().dispatch_db
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return CredentialStore(make_engine(url))


@people_app.command("set-password")
def set_password(
    person_id: Annotated[str, typer.Argument(help="roster person id")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Set (or replace) a person's sign-in password; their open sessions end."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        _store().set_password(person_id, password)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(f"password set for {person_id}")


@dataclass(frozen=True)
class DemoSignIn:
    person_id: str
    name: str
    roles: str
    password: str  # "" when it was set before (not known any more)


def ensure_demo_passwords(registry: Path, db_url: str, out: Path) -> list[DemoSignIn]:
    """Every roster person of `registry` without a password gets a random one (no constant
    demo passwords); the new ones are appended to `out` (mode 0600) and returned."""
    import yaml

    store = CredentialStore(make_engine(db_url))
    rows: list[DemoSignIn] = []
    fresh: list[str] = []
    for person in yaml.safe_load(registry.read_text()).get("roster") or []:
        pid = str(person["id"])
        password = ""
        if not store.has_password(pid):
            password = secrets.token_urlsafe(9)
            store.set_password(pid, password)
            fresh.append(f"{pid}\t{password}\n")
        rows.append(
            DemoSignIn(pid, str(person.get("name", "")), ",".join(person["roles"]), password)
        )
    if fresh:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as f:
            f.writelines(fresh)
    return rows
