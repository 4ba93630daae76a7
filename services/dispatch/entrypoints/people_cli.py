"""`liandong people set-password ID`: the embedded sign-in's passwords (argon2 hashes in
dispatch's database, LIANDONG_DISPATCH_DB)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dispatch.adapters.credentials import CredentialStore
from dispatch.adapters.store import make_engine

people_app = typer.Typer(help="People of the roster: sign-in passwords.", no_args_is_help=True)


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
