"""Federation commands: ``sync`` (pull partners and feeds), ``feed`` (TAXII feeds),
``push``, ``key rotate`` and the partner's endpoint and key (``partner set-url``,
``partner rotate-key``)."""

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

from detente.cli.app import (
    HomeOption,
    console,
    err_console,
    http_url,
    open_node,
    stix_timestamp,
)
from detente.errors import UsageError
from detente.federation.exchange.cursors import all_cursors
from detente.federation.exchange.feeds import (
    add_feed,
    feed_cursor,
    list_feeds,
    pull_feeds,
    remove_feed,
    sync_sources,
)
from detente.federation.exchange.keys import RotationStatement, accept_rotation, rotate_node_key
from detente.federation.exchange.pull import PartnerSummary, sync_forever
from detente.federation.exchange.pull import Progress as SyncProgress
from detente.federation.exchange.push import push_to_partner
from detente.federation.http.client import Limits
from detente.ledger import Entry
from detente.stix.timestamps import format_micros, micros_from_stix

key_app = typer.Typer(help="This node's Ed25519 key: rotation.", no_args_is_help=True)
feed_app = typer.Typer(help="TAXII 2.1 feeds this node pulls (any server; unsigned).",
                       no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(app: typer.Typer) -> None:
    from detente.cli.partner_cmds import partner_app

    app.command("sync")(sync)
    app.command("push")(push)
    app.add_typer(key_app, name="key")
    app.add_typer(feed_app, name="feed")
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
            kind, sep, name = partner.partition(":")
            tasks[partner] = bar.add_task(f"pull {kind} {name}" if sep else f"sync {partner}",
                                          total=None)
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
    table = Table("source", "new", "updated", "corrected", "duplicates", "rejected", "echoes",
                  "result")
    for s in summaries:
        result = "[red]failed[/]" if not s.ok else "[yellow]rejections[/]" if s.rejected \
            else "ok"
        table.add_row(_label(s), str(s.new), str(s.updated), str(s.corrected),
                      str(s.duplicates), str(s.rejected), str(s.echoes), result)
    console.print(table)
    for s in summaries:
        if s.key_rotated:
            console.print(f"{s.partner}: accepted its key-rotation statement", highlight=False)
        for reason in s.rejections:  # every one (up to MAX_REJECTIONS per source)
            console.print(f"[dim]{_label(s)} rejected:[/] {reason}", highlight=False,
                          soft_wrap=True)
        if s.rejected > len(s.rejections):
            console.print(f"[dim]{_label(s)}: {s.rejected - len(s.rejections)} more "
                          "rejections not kept[/]", highlight=False)
        for warning in s.warnings:
            console.print(f"[yellow]{s.partner}:[/] {warning}", highlight=False)
        if s.error:
            err_console.print(f"[bold red]error:[/] {s.error}", highlight=False, soft_wrap=True)


def _label(s: PartnerSummary) -> str:
    return f"feed {s.feed}" if s.feed is not None else s.partner


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
        "--partner", help="sync only this partner (repeatable; default: every partner "
                          "and feed)")] = None,
    feed: Annotated[list[str] | None, typer.Option(
        "--feed", help="pull only this feed (repeatable)")] = None,
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
    """Pull what each partner released to us (its TAXII `releases` collection), then
    every feed; exits 1 if a source failed or anything was rejected (all listed)."""
    if status:
        _print_cursors(home)
        return 0
    node = open_node(home)
    limits = _limits(page_size, timeout, deadline, retries)
    if watch:
        with _progress(not as_json) as progress:
            sync_forever(node, partner, feed, interval_s=interval, limits=limits,
                         progress=progress,
                         on_round=lambda s: _print_summaries(s, as_json))
        return 0
    with _progress(not as_json) as progress:
        summaries = sync_sources(node, partner, feed, limits=limits, progress=progress)
    _print_summaries(summaries, as_json)
    return 0 if all(s.clean for s in summaries) else 1


# -- feeds ------------------------------------------------------------------------------------
@feed_app.command("add")
def feed_add(
    name: Annotated[str, typer.Argument(help="a name for the feed (its source: feed:NAME)")],
    url: Annotated[str, typer.Option("--url", help="the TAXII 2.1 server's discovery URL, "
                                     "an API root, or a collection", callback=http_url)],
    collection: Annotated[str | None, typer.Option(
        "--collection", help="the collection's id, alias or title (default: the server's "
                             "only readable collection)")] = None,
    user: Annotated[str | None, typer.Option("--user", help="HTTP Basic user")] = None,
    password: Annotated[str | None, typer.Option(
        "--password", help="HTTP Basic password (stored owner-only in the node's home)",
        envvar="DETENTE_FEED_PASSWORD", show_envvar=True)] = None,
    token: Annotated[str | None, typer.Option(
        "--token", help="bearer token (stored owner-only in the node's home)",
        envvar="DETENTE_FEED_TOKEN", show_envvar=True)] = None,
    accept_corrections: Annotated[bool, typer.Option(
        "--accept-corrections", help="a version the feed sent before may come again with "
        "other content: replace it (recorded in the ledger, views re-released)")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a TAXII 2.1 feed (nothing is fetched until `feed pull` or `sync`)."""
    node = open_node(home)
    added = add_feed(node, name, url, collection=collection, user=user, password=password,
                     token=token, accept_corrections=accept_corrections)
    if as_json:
        sys.stdout.write(orjson.dumps(added.to_json(), option=orjson.OPT_INDENT_2).decode()
                         + "\n")
        return
    console.print(f"feed {added.name} added ({added.url}, {added.auth} authentication"
                  f"{', accepts corrections' if added.accept_corrections else ''}); "
                  f"pull it with 'detente feed pull {added.name}'", highlight=False)


@feed_app.command("list")
def feed_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """The feeds, with where each pull stopped and its last error."""
    node = open_node(home)
    rows = []
    for f in list_feeds(node):
        c = feed_cursor(node, f)
        rows.append((f, c))
    if as_json:
        doc = [{**f.to_json(), "cursor": {
            "added_after": format_micros(c.added_after) if c.added_after is not None else None,
            "next": c.next_token is not None,
            "last_run": format_micros(c.last_run) if c.last_run is not None else None,
            "last_error": c.last_error}} for f, c in rows]
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table("feed", "url", "collection", "auth", "corrections", "added_after",
                  "last run", "last error")
    for f, c in rows:
        table.add_row(f.name, f.url, f.collection or "-", f.auth,
                      "accepted" if f.accept_corrections else "refused",
                      format_micros(c.added_after) if c.added_after is not None else "-",
                      format_micros(c.last_run) if c.last_run is not None else "never",
                      c.last_error or "")
    console.print(table)


@feed_app.command("remove")
def feed_remove(
    name: Annotated[str, typer.Argument(help="the feed")],
    home: HomeOption = None,
) -> None:
    """Forget a feed, its cursor and its credentials (what it sent stays stored)."""
    node = open_node(home)
    removed = remove_feed(node, name)
    console.print(f"feed {removed.name} removed; the objects it sent stay stored "
                  f"(origin {removed.source})", highlight=False)


@feed_app.command("pull")
def feed_pull(
    name: Annotated[str | None, typer.Argument(help="the feed (default: every feed)")] = None,
    home: HomeOption = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=10_000,
                                           help="objects asked per page")] = 1000,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1,
                                           help="seconds per request")] = 60.0,
    deadline: Annotated[float, typer.Option("--deadline", min=1.0,
                                            help="seconds per feed")] = 1800.0,
    retries: Annotated[int, typer.Option("--retries", min=0, max=20,
                                         help="retries on timeouts and 5xx")] = 4,
    as_json: JsonOption = False,
) -> int:
    """Pull a feed (or every feed) from where its last pull stopped.

    Exits 1 if a feed failed or anything was rejected (every rejection is listed)."""
    node = open_node(home)
    limits = _limits(page_size, timeout, deadline, retries)
    with _progress(not as_json) as progress:
        summaries = pull_feeds(node, [name] if name is not None else None, limits=limits,
                               progress=progress)
    _print_summaries(summaries, as_json)
    return 0 if all(s.clean for s in summaries) else 1


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
