"""`python -m chaos` (make chaos): the scripted fault run; exit 0 on PASS, 1 on FAIL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/ (the benchmark's registry), when run from elsewhere

app = typer.Typer(add_completion=False)


@app.command()
def chaos(
    loggers: Annotated[int, typer.Option(min=10, help="simulated loggers")] = 150,
    fast: Annotated[
        int, typer.Option(min=2, help="of which close their first hour early (exceedances)")
    ] = 24,
    static_membership: Annotated[
        bool,
        typer.Option(
            help="alerts workers and dispatch replicas with a stable group.instance.id (rejoin "
            "at once after a restart; the alerts target is then 15 s, else 60 s)"
        ),
    ] = True,
    keep_state: Annotated[
        bool, typer.Option(help="leave the brokers and PostgreSQL running afterwards")
    ] = False,
) -> None:
    """Three brokers, two replicas of each service, loggers with exceedances; SIGKILL every
    service twice, a broker, PostgreSQL; writes chaos/results.json and chaos/results.md."""
    from chaos.run import main

    raise typer.Exit(
        main(loggers=loggers, fast=fast, keep_state=keep_state, static_alerts=static_membership)
    )


if __name__ == "__main__":
    app()
