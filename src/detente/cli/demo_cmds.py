"""`detente demo`: the coalition scenario, end to end on one machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detente.cli.app import console


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Annotated[Path, typer.Option("--out", help="directory for the nodes' homes and "
                                      "the report (replaced)")] = Path("demo-out"),
) -> None:
    """Play the scenario: the U.S., France and Russia against ISIS, on 127.0.0.1."""
    from detente.scenario.demo import run_demo

    step = 0

    def say(text: str) -> None:
        nonlocal step
        step += 1
        console.print(f"[bold]{step:>2}.[/] {text}", highlight=False)

    outcome = run_demo(out, say)
    failed = [k for k, ok in outcome.ledgers.items() if not ok]
    if failed or outcome.ledger_problems:
        console.print(f"[red]problems:[/] {'; '.join(outcome.ledger_problems + failed)}")
        raise typer.Exit(1)
