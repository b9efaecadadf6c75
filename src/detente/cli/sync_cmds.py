"""Federation commands: ``sync`` (pull), ``push``, ``key rotate`` and the partner's
endpoint and key (``partner set-url``, ``partner rotate-key``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from detente.cli.app import HomeOption, console, err_console, open_node, stix_timestamp
from detente.errors import UsageError
from detente.federation.exchange.cursors import all_cursors
from detente.federation.exchange.keys import RotationStatement, accept_rotation, rotate_node_key
from detente.federation.exchange.pull import PartnerSummary, sync_all, sync_forever
from detente.federation.exchange.pull import Progress as SyncProgress
from detente.federation.exchange.push import push_to_partner
from detente.federation.http.client import Limits
from detente.ledger import Entry
from detente.stix.timestamps import format_micros, micros_from_stix

key_app = typer.Typer(help="This node's Ed25519 key: rotation.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(app: typer.Typer) -> None:
    from detente.cli.partner_cmds import partner_app

    app.command("sync")(sync)
    app.command("push")(push)
    app.add_typer(key_app, name="key")
    partner_app.command("rotate-key")(partner_rotate_key)
    partner_app.command("set-url")(partner_set_url)


# -- sync -------------------------------------------------------------------------------------
def _limits(page_size: int, timeout: float, deadline: float, retries: int) -> Limits:
    return Limits(page_size=page_size, request_timeout_s=timeout, deadline_s=deadline,
                  retries=retries)


@contextmanager
def _progress(enabled: bool) -> Iterator[SyncProgress | None]:
    """A progress line per partner on a terminal; nothing otherwise."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                   TextColumn("{task.completed} objects"), TimeElapsedColumn(),
                   console=err_console, transient=True)
    tasks: dict[str, TaskID] = {}

    def update(partner: str, count: int, done: bool) -> None:
        if partner not in tasks:
            tasks[partner] = bar.add_task(f"sync {partner}", total=None)
        bar.update(tasks[partner], completed=count)
        if done:
            bar.update(tasks[partner], total=count)

    with bar:
        yield update


def _print_summaries(summaries: Sequence[PartnerSummary], as_json: bool) -> None:
    if as_json:
        rows = [s.to_json() for s in summaries]
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table("partner", "new", "updated", "duplicates", "rejected", "echoes", "result")
    for s in summaries:
        result = "ok" if s.ok else "[red]failed[/]"
        table.add_row(s.partner, str(s.new), str(s.updated), str(s.duplicates),
                      str(s.rejected), str(s.echoes), result)
    console.print(table)
    for s in summaries:
        if s.key_rotated:
            console.print(f"{s.partner}: accepted its key-rotation statement", highlight=False)
        for reason in s.rejections:
            console.print(f"[dim]{s.partner} rejected:[/] {reason}", highlight=False)
        for warning in s.warnings:
            console.print(f"[yellow]{s.partner}:[/] {warning}", highlight=False)
        if s.error:
            err_console.print(f"[bold red]error:[/] {s.error}", highlight=False, soft_wrap=True)


def _print_cursors(home: Path | None) -> None:
    node = open_node(home)
    table = Table("partner", "direction", "added_after", "last run", "last error")
    for c in all_cursors(node.store.engine):
        table.add_row(c.partner, c.direction,
                      format_micros(c.added_after) if c.added_after is not None else "-",
                      format_micros(c.last_run) if c.last_run is not None else "never",
                      c.last_error or "")
    console.print(table)


def sync(
    home: HomeOption = None,
    partner: Annotated[list[str] | None, typer.Option(
        "--partner", help="sync only this partner (repeatable; default: all)")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="keep syncing")] = False,
    interval: Annotated[float, typer.Option("--interval", min=1.0,
                                            help="seconds between rounds with --watch")] = 300.0,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=10_000,
                                           help="objects asked per page")] = 1000,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1,
                                           help="seconds per request")] = 60.0,
    deadline: Annotated[float, typer.Option("--deadline", min=1.0,
                                            help="seconds per partner per round")] = 1800.0,
    retries: Annotated[int, typer.Option("--retries", min=0, max=20,
                                         help="retries on timeouts and 5xx")] = 4,
    status: Annotated[bool, typer.Option("--status", help="show each partner's cursor, "
                                         "last run and last error, and exit")] = False,
    as_json: JsonOption = False,
) -> int:
    """Pull what each partner released to us from its TAXII `releases` collection."""
    if status:
        _print_cursors(home)
        return 0
    node = open_node(home)
    limits = _limits(page_size, timeout, deadline, retries)
    if watch:
        with _progress(not as_json) as progress:
            sync_forever(node, partner, interval_s=interval, limits=limits,
                         progress=progress,
                         on_round=lambda s: _print_summaries(s, as_json))
        return 0
    with _progress(not as_json) as progress:
        summaries = sync_all(node, partner, limits=limits, progress=progress)
    _print_summaries(summaries, as_json)
    return 0 if all(s.ok for s in summaries) else 1


# -- push -------------------------------------------------------------------------------------
def push(
    partner: Annotated[str, typer.Argument(help="the partner to push to")],
    home: HomeOption = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="push views released after this STIX timestamp "
                        "(default: after the last push)", callback=stix_timestamp)] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1,
                                           help="seconds per request")] = 60.0,
    as_json: JsonOption = False,
) -> int:
    """Push our views for PARTNER to its `inbox`, following each status to completion."""
    node = open_node(home)
    after = micros_from_stix(since, field="--since") if since is not None else None
    summary = push_to_partner(node, partner, since=after,
                              limits=Limits(request_timeout_s=timeout))
    if as_json:
        sys.stdout.write(orjson.dumps(summary.to_json(), option=orjson.OPT_INDENT_2).decode()
                         + "\n")
    else:
        console.print(f"{partner}: pushed {summary.pushed} in {summary.requests} requests; "
                      f"{summary.succeeded} accepted, {summary.failed} refused, "
                      f"{summary.pending} pending", highlight=False)
        for reason in summary.failures:
            console.print(f"[dim]{partner} refused:[/] {reason}", highlight=False)
        if summary.error:
            err_console.print(f"[bold red]error:[/] {summary.error}", highlight=False,
                              soft_wrap=True)
    return 0 if summary.ok else 1


# -- keys -------------------------------------------------------------------------------------
@key_app.command("rotate")
def key_rotate(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Give this node a new key, announced by a statement signed with the old one."""
    node = open_node(home)
    statement = rotate_node_key(node)
    path = node.home / "key-rotation.json"
    if as_json:
        sys.stdout.write(statement.to_bytes().decode() + "\n")
        return
    console.print(f"new public key {node.public_key_b64}", highlight=False)
    console.print(f"statement written to {path}; it is served at "
                  "/.well-known/detente-key-rotation (restart 'detente serve')", highlight=False)
    console.print("[dim]partners accept it during their next sync, or by hand with "
                  f"'detente partner rotate-key {node.name} --statement FILE'[/]")


def partner_rotate_key(
    name: Annotated[str, typer.Argument(help="the partner whose key changes")],
    statement: Annotated[Path, typer.Option("--statement", help="its key-rotation "
                                            "statement (JSON)", exists=True, dir_okay=False)],
    home: HomeOption = None,
) -> None:
    """Accept a partner's new key after checking its old key signed the statement."""
    node = open_node(home)
    parsed = RotationStatement.from_bytes(statement.read_bytes())
    if parsed.name != name:
        raise UsageError(f"the statement is for {parsed.name!r}, not {name!r}")
    partner = accept_rotation(node, parsed)
    console.print(f"{partner.name}: key is now {partner.public_key_b64}; the old key is "
                  "refused from now on", highlight=False)


def partner_set_url(
    name: Annotated[str, typer.Argument(help="the partner")],
    url: Annotated[str, typer.Argument(help="its node's new URL")],
    home: HomeOption = None,
) -> None:
    """Change where a partner's node is reached."""
    node = open_node(home)
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"partner URL {url!r} must start with http:// or https://")
    node.partners.update(name, url=url.rstrip("/"))
    node.ledger.append(Entry(kind="policy-change", time=datetime.now(UTC), partner=name,
                             detail=f"partner URL set to {url.rstrip('/')}"))
    console.print(f"{name}: URL is now {url.rstrip('/')}", highlight=False)
