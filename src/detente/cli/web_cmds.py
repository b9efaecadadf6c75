"""`detente operator`: local accounts for the web UI (served by `detente serve` at /)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from detente.cli.app import HomeOption, console, open_node
from detente.errors import UsageError
from detente.stix.timestamps import format_micros
from detente.web.operators import OperatorBook
from detente.web.sessions import SessionBook

operator_app = typer.Typer(help="Operator accounts of the web UI (argon2id-hashed passwords).",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(operator_app, name="operator")


def _books(home: Path | None) -> tuple[OperatorBook, SessionBook]:
    node = open_node(home)
    engine = node.store.engine
    return OperatorBook(engine), SessionBook(engine, node.secret_file("web-session.key"))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UsageError("no password on stdin")
        return line.rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@operator_app.command("add")
def operator_add(
    name: Annotated[str, typer.Argument(help="the operator's login name, e.g. alice")],
    home: HomeOption = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from the first line of stdin")] = False,
) -> None:
    """Create an operator account; the password is asked twice, hidden."""
    operators, _ = _books(home)
    operators.add(name, _read_password(password_stdin))
    console.print(f"operator [bold]{name}[/] added; log in at the node's URL (detente serve)",
                  highlight=False)


@operator_app.command("list")
def operator_list(home: HomeOption = None, as_json: Annotated[bool, typer.Option(
        "--json", help="print JSON")] = False) -> None:
    """List operator accounts."""
    operators, _ = _books(home)
    rows = operators.all()
    if as_json:
        out = [{"name": op.name, "created": format_micros(op.created_at)} for op in rows]
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not rows:
        console.print("no operators yet: add one with 'detente operator add NAME'")
        return
    table = Table("name", "created")
    for op in rows:
        table.add_row(op.name, format_micros(op.created_at))
    console.print(table)


@operator_app.command("remove")
def operator_remove(name: str, home: HomeOption = None) -> None:
    """Remove an operator account and end its sessions."""
    operators, sessions = _books(home)
    operators.remove(name)
    ended = sessions.close_all(name)
    console.print(f"removed operator {name} ({ended} session(s) ended)", highlight=False)
