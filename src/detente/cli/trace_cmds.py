"""`detente trace`: who leaked this?"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer

from detente.cli.app import HomeOption, console, open_node
from detente.errors import UsageError
from detente.usecases.trace import trace_artifact


def register(app: typer.Typer) -> None:
    app.command("trace")(trace)


def trace(
    file: Annotated[Path, typer.Argument(help="the leaked artifact ('-' for stdin): a full or "
                                         "partial STIX bundle, JSON, CSV, text excerpt or "
                                         "indicator list")],
    home: HomeOption = None,
    fmt: Annotated[Literal["stix", "text", "csv"] | None, typer.Option(
        "--format", help="the artifact's format (default: detect)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Match an artifact to this node's releases and name the recipients it came from."""
    if str(file) == "-":
        data = sys.stdin.buffer.read()
    elif not file.is_file():
        raise UsageError(f"{file}: no such file")
    else:
        data = file.read_bytes()
    node = open_node(home)
    outcome = trace_artifact(node, data, fmt)
    if as_json:
        sys.stdout.write(orjson.dumps(outcome.to_json(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
        return
    console.print(outcome.report.to_text(), highlight=False, markup=False)
    if outcome.proofs:
        console.print(f"\nledger: {len(outcome.proofs)} matched release(s) to the accused are "
                      "included in this node's log (proofs with --json)")
