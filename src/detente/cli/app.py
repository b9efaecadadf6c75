"""Root of the ``detente`` command and its one error renderer.

A user's mistake prints one line (what, where, how to fix) on stderr and exits 2 for
usage, 1 for failure; never a traceback.  Command groups live in sibling modules and are
registered here explicitly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from detente.errors import DetenteError
from detente.node import Node, find_home

app = typer.Typer(
    name="detente",
    help="Share intelligence with partners you don't fully trust.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="node home directory (default: $DETENTE_HOME)",
                 show_default=False),
]


_opened: list[Node] = []


def open_node(home: Path | None) -> Node:
    """Open the node a command works on; `main` closes it when the command ends."""
    node = Node.open(find_home(home))
    _opened.append(node)
    return node


def close_nodes() -> None:
    while _opened:
        _opened.pop().close()


def report_error(exc: DetenteError) -> int:
    err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
    if exc.hint:
        err_console.print(f"[dim]hint:[/] {exc.hint}", highlight=False, soft_wrap=True)
    return exc.exit_code


def _register() -> None:
    """Every command group, registered explicitly (no plugin discovery)."""
    from detente.cli import (
        deconflict_cmds,
        demo_cmds,
        log_cmds,
        node_cmds,
        partner_cmds,
        policy_cmds,
        release_cmds,
        serve_cmds,
        sync_cmds,
        trace_cmds,
        trust_cmds,
        web_cmds,
    )

    for module in (node_cmds, partner_cmds, policy_cmds, release_cmds, serve_cmds, sync_cmds,
                   log_cmds, trust_cmds, deconflict_cmds, trace_cmds, web_cmds, demo_cmds):
        module.register(app)


_register()


def _click_classes() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """Click's ClickException and Abort, in click itself and in typer's vendored copy."""
    import click

    exceptions: list[type[BaseException]] = [click.ClickException]
    vendored = getattr(getattr(typer, "_click", None), "exceptions", None)
    if vendored is not None:
        exceptions.append(vendored.ClickException)
    return tuple(exceptions), (click.Abort, typer.Abort)


def _click_exit(exc: BaseException) -> int | None:
    """Render a usage error or abort the way click would; None if it is neither."""
    exceptions, aborts = _click_classes()
    if isinstance(exc, aborts):
        err_console.print("aborted")
        return 1
    if isinstance(exc, exceptions):
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 1))
    return None


def _run() -> object:
    try:
        return app(standalone_mode=False)
    finally:
        close_nodes()


def main() -> None:
    """Entry point of the console script."""
    try:
        result = _run()
    except DetenteError as exc:
        sys.exit(report_error(exc))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        code = _click_exit(exc)
        if code is None:
            raise
        sys.exit(code)
    sys.exit(result if isinstance(result, int) else 0)
