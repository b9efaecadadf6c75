"""Node commands: init, identity, ingest, show, list, export, search."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from detente.cli import IMPORTED_AT
from detente.cli.app import (
    HomeOption,
    console,
    err_console,
    http_url,
    one_of,
    open_node,
    stix_timestamp,
)
from detente.errors import NotFoundError, UsageError, ValidationError
from detente.federation.exchange.local import IngestSummary, ingest_local
from detente.node import Node, find_home
from detente.policy.rules import TLP_LEVELS
from detente.stix.bundle import Position, iter_objects, make_bundle
from detente.stix.timestamps import format_micros, micros_from_stix
from detente.store.base import Query, StoredObject
from detente.store.search import Hit

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("identity")(identity)
    app.command("ingest")(ingest)
    app.command("show")(show)
    app.command("list")(list_objects)
    app.command("export")(export)
    app.command("search")(search)


def init(
    name: Annotated[str, typer.Option("--name", help="this node's name, e.g. us")],
    home: HomeOption = None,
    store: Annotated[str | None, typer.Option("--store", help="store URL (default: SQLite "
                                              "file in the home)")] = None,
    url: Annotated[str | None, typer.Option("--url", help="URL partners reach us at",
                                            callback=http_url)] = None,
    community: Annotated[list[str] | None, typer.Option(
        "--community", help="a community this node belongs to (repeatable)")] = None,
    default_marking: Annotated[str | None, typer.Option(
        "--default-marking", help="TLP level for objects that carry none (without it they "
        f"are never released): {', '.join(TLP_LEVELS)}",
        callback=one_of(TLP_LEVELS))] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a node home: settings, Ed25519 key pair, STIX identity and store.

    ``--url``'s port becomes the port ``serve`` binds (and its host, when it is an IP
    address).  A failed init leaves nothing behind."""
    node = Node.init(find_home(home), name, store_url=store, url=url,
                     communities=",".join(community or []),
                     default_marking=default_marking or "")
    info = {"name": node.name, "home": str(node.home), "identity": node.identity_id,
            "public_key": node.public_key_b64, "url": node.settings["url"],
            "host": node.settings["host"], "port": node.settings["port"],
            "default_marking": node.settings["default_marking"] or None}
    node.close()
    if as_json:
        sys.stdout.write(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    console.print(f"created node [bold]{info['name']}[/] in {info['home']}", highlight=False)
    console.print(f"identity {info['identity']}", highlight=False)
    console.print(f"public key {info['public_key']}", highlight=False)
    console.print(f"serves {info['url']} (binds {info['host']}:{info['port']})",
                  highlight=False)
    if not info["default_marking"]:
        console.print("[dim]no default marking: objects without a TLP marking are never "
                      "released ('detente policy default-marking LEVEL' sets one)[/]")


def identity(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Print what partners need to know about this node."""
    node = open_node(home)
    info = {
        "name": node.name,
        "identity": node.identity_id,
        "public_key": node.public_key_b64,
        "url": node.settings["url"],
    }
    if as_json:
        sys.stdout.write(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for key, value in info.items():
        console.print(f"{key:<11} {value}", highlight=False)


def _expand(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if (path / "manifest.json").is_file():
            yield path  # a MISP feed directory: iter_objects reads it by its manifest
        elif path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix in {".json", ".jsonl"}
            )
        elif path.exists():
            yield path
        else:
            raise UsageError(f"{path}: no such file or directory")


def _items(paths: list[Path]) -> Iterator[tuple[str, object]]:
    for path in _expand(paths):
        for position, item in iter_objects(path):
            where = position.describe() if isinstance(position, Position) else str(position)
            yield f"{path.name} {where}", item


def _command_seconds() -> float:
    """Wall time since this process started (Linux ``/proc``: interpreter start-up and
    imports included), else since the CLI was imported."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - IMPORTED_AT


def _print_summary(summary: IngestSummary, command_s: float) -> None:
    status = "[yellow]rolled back (--strict)[/]" if summary.rolled_back else ""
    console.print(
        f"stored {summary.stored}"
        f"{f' ({summary.corrected} corrections)' if summary.corrected else ''}, "
        f"duplicates {summary.duplicates}, rejected "
        f"{len(summary.rejected)} in {summary.seconds:.2f} s "
        f"({summary.per_second:,.0f} objects/s, validation, storage and earned trust); "
        f"the whole command {command_s:.2f} s {status}",
        highlight=False,
    )
    if summary.rejected:
        table = Table("position", "id", "reason", title="rejected objects", show_lines=False)
        for r in summary.rejected[:200]:
            table.add_row(r.position, r.id or "-", r.reason)
        console.print(table)
        if len(summary.rejected) > 200:
            console.print(f"... and {len(summary.rejected) - 200} more (use --json for all)")


def ingest(
    paths: Annotated[list[Path], typer.Argument(
        help="bundles, objects, JSON Lines, MISP events, MISP feed dirs, dirs")],
    home: HomeOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="all or nothing")] = False,
    accept_corrections: Annotated[bool, typer.Option(
        "--accept-corrections", help="third-party objects already stored at the same "
        "version with other content are replaced (their creator corrected them without a "
        "new version; recorded in the ledger, views re-released)")] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate and store STIX 2.1 content (MISP events are converted with misp-stix);
    valid objects are kept even if others fail.

    Exits 0 when everything was stored (or already held), 1 when an object was rejected
    or the input held no object at all."""
    node = open_node(home)
    show_progress = err_console.is_terminal and not as_json
    with Progress(
        TextColumn("ingesting"), BarColumn(), TextColumn("{task.completed:,} objects"),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
        # no refresh thread: a process with one thread reads and validates a large input
        # ahead in a worker process (federation/exchange/pipe.py); each tick refreshes
        console=err_console, disable=not show_progress, transient=True, auto_refresh=False,
    ) as progress:
        task = progress.add_task("ingest", total=None, rate="")

        def tick(n: int) -> None:
            elapsed = progress.tasks[0].elapsed or 0.0
            rate = f"{n / elapsed:,.0f}/s" if elapsed > 0 else ""
            progress.update(task, completed=n, rate=rate, refresh=True)

        summary = ingest_local(node, _items(paths), strict=strict,
                               accept_corrections=accept_corrections, on_progress=tick)
    node.close()
    command_s = _command_seconds()
    if as_json:
        out = {**summary.as_dict(), "command_seconds": round(command_s, 3)}
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        _print_summary(summary, command_s)
    if summary.seen == 0:  # an empty file or directory is a mistake, not a success
        raise ValidationError(f"no objects in {', '.join(str(p) for p in paths)}: nothing "
                              "was ingested", hint="give STIX bundles, objects, JSON Lines "
                              "or MISP events")
    raise typer.Exit(1 if summary.rejected else 0)


def _dump(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode()


def show(
    object_id: Annotated[str, typer.Argument(help="a STIX id")],
    home: HomeOption = None,
    version: Annotated[str | None, typer.Option(
        "--version", help="an exact modified timestamp, or first/last",
        callback=lambda v: v if v in (None, "first", "last") else stix_timestamp(v))] = None,
    all_versions: Annotated[bool, typer.Option("--all-versions")] = False,
) -> None:
    """Print one object (latest version unless told otherwise)."""
    node = open_node(home)
    if all_versions:
        found = node.store.versions(object_id)
        if not found:
            raise NotFoundError(f"no object {object_id} in this node")
        sys.stdout.write(_dump({"versions": [o.body for o in found]}) + "\n")
        return
    obj = node.store.get(object_id, version or "last")
    if obj is None:
        where = f" at version {version}" if version else ""
        raise NotFoundError(f"no object {object_id}{where} in this node")
    sys.stdout.write(_dump(obj.body) + "\n")
    _say_opinions(node, object_id)


def _say_opinions(node: Node, object_id: str) -> None:
    """Partners' opinions (and ours) about the object, on stderr: stdout stays the JSON."""
    from detente.cli.app import err_console

    found = node.trust.opinions_about(object_id)
    if not found:
        return
    err_console.print("opinions: " + ", ".join(o.said for o in found), highlight=False,
                      soft_wrap=True)
    for o in found:
        err_console.print(f"  {o.who} ({o.value}, {o.id}): "
                          f"{o.explanation or 'no reason given'}", highlight=False,
                          soft_wrap=True)


def list_objects(
    home: HomeOption = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="STIX type (repeatable)")]
    = None,
    since: Annotated[str | None, typer.Option("--since", help="only added after this "
                                              "STIX timestamp",
                                              callback=stix_timestamp)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the latest versions stored, oldest first.

    Ids are printed whole, for ``detente show ID``; piped, each object is one
    tab-separated line: date added, id, name, origin."""
    node = open_node(home)
    after = micros_from_stix(since, field="--since") if since else None
    page = node.store.list(Query(types=tuple(type_ or ()), added_after=after, limit=limit))
    if as_json:
        rows = [_row(o) for o in page.objects]
        sys.stdout.write(orjson.dumps({"objects": rows, "more": page.more},
                                      option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    rows = [_row(o) for o in page.objects]
    widest = max((len(r["id"]) for r in rows), default=2)
    # a table only where its date and id columns fit whole (+ 20 for name, origin, rules)
    if not console.is_terminal or console.width < len("date added") + 17 + widest + 20:
        for r in rows:
            name = " ".join(str(r["name"] or "").split())  # one line per object
            sys.stdout.write(f"{r['date_added']}\t{r['id']}\t{name}\t{r['origin']}\n")
    else:
        table = Table()
        table.add_column("date added", no_wrap=True)
        table.add_column("id", no_wrap=True, min_width=widest)  # never cut: ids are copied
        table.add_column("name", overflow="fold")
        table.add_column("origin", overflow="fold")
        for r in rows:
            table.add_row(r["date_added"], r["id"], r["name"] or "", r["origin"])
        console.print(table)
    if page.more:  # on stderr when piped: stdout holds only the objects' lines
        (console if console.is_terminal else err_console).print(
            f"more objects follow: --since {format_micros(page.cursor or 0)}",
            highlight=False)


def _row(o: StoredObject) -> dict[str, Any]:
    body = o.body
    return {
        "id": o.id,
        "type": o.type,
        "name": body.get("name") or body.get("value"),
        "date_added": format_micros(o.date_added),
        "origin": o.provenance.origin,
    }


def export(
    home: HomeOption = None,
    type_: Annotated[list[str] | None, typer.Option("--type")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    all_versions: Annotated[bool, typer.Option("--all-versions")] = False,
    format_: Annotated[Literal["stix", "misp"], typer.Option(
        "--format", help="stix (a bundle) or misp (a MISP feed directory, --output DIR)")]
    = "stix",
    partner: Annotated[str | None, typer.Option(
        "--partner", help="with --format misp: only what this partner is served")] = None,
) -> None:
    """Write stored objects as one STIX bundle (to stdout or --output), or as a MISP feed."""
    node = open_node(home)
    if format_ == "misp":
        _export_misp(node, output, partner, bool(type_) or all_versions)
        return
    if partner is not None:
        raise UsageError("--partner goes with --format misp",
                         hint="--format stix (default) or --format misp --output DIR")
    query = Query(types=tuple(type_ or ()), versions=("all",) if all_versions else ("last",))
    bodies = [o.body for o in node.store.iter_all(query)]
    data = make_bundle(bodies)
    if output is None:
        sys.stdout.buffer.write(data + b"\n")
    else:
        output.write_bytes(data + b"\n")
        console.print(f"wrote {len(bodies)} objects to {output}")


def _export_misp(node: Node, output: Path | None, partner: str | None, filtered: bool) -> None:
    from detente.usecases.misp_export import export_misp_feed

    if output is None or filtered:
        raise UsageError("--format misp writes a feed directory: give --output DIR "
                         "(--type and --all-versions do not apply)")
    summary = export_misp_feed(node, output, partner)
    for problem in summary.problems:
        err_console.print(f"[yellow]not exported:[/] {problem}", highlight=False,
                          soft_wrap=True)
    console.print(f"wrote a MISP feed of {summary.events} events ({summary.attributes} "
                  f"attributes, from {summary.objects} objects) to {output}", highlight=False)
    if summary.problems:
        raise typer.Exit(1)


# -- search (docs/search.md): operator-side only, it reads the local store; partners have
# no search, what they may read is what the release path served them

def search(
    query: Annotated[str | None, typer.Argument(
        help="an IP, domain, URL, e-mail address, hash, ATT&CK id (T1059) or words; every "
             "word must match, word* matches a prefix", show_default=False)] = None,
    home: HomeOption = None,
    type_: Annotated[list[str] | None, typer.Option(
        "--type", help="only this STIX type (repeatable)", show_default=False)] = None,
    origin: Annotated[list[str] | None, typer.Option(
        "--origin", help="only from this origin: local or a partner (repeatable)",
        show_default=False)] = None,
    marking: Annotated[list[str] | None, typer.Option(
        "--marking", help="only with this TLP level: clear, green, amber, amber+strict, red "
                          "(repeatable)", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000,
                                       help="at most this many results")] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0,
                                        help="skip this many results (the next page)")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
    = False,
    rebuild_index: Annotated[bool, typer.Option(
        "--rebuild-index", help="rebuild the search index from the stored objects first")]
    = False,
) -> None:
    """Find objects by observable value (in patterns and SCOs), name, alias, description or
    ATT&CK id; names matches first, then newest first. Without QUERY, list the newest."""
    if query is not None and not query.strip():
        raise UsageError("the search query is empty",
                         hint="give a value, a name or words, or no QUERY to list the newest")
    from detente.errors import ValidationError
    from detente.store.search import Find, parse_query

    if query is not None:
        try:
            parse_query(query)
        except ValidationError as exc:
            raise UsageError(exc.message, hint=exc.hint) from None
    node = open_node(home)
    if rebuild_index:
        n = node.store.rebuild_search(
            lambda done, total: err_console.print(f"indexed {done:,} of {total:,}")
            if done % 100_000 < 2000 or done == total else None)
        err_console.print(f"search index rebuilt: {n:,} objects")
    found = node.store.find(Find(text=query or "", types=tuple(type_ or ()),
                                 origins=tuple(origin or ()), markings=tuple(marking or ()),
                                 offset=offset, limit=limit))
    if as_json:
        out = {"results": [_hit_row(h) for h in found.hits], "more": found.more}
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not found.hits:
        err_console.print("no objects match" + (f" {query!r}" if query else ""))
        return
    # plain aligned lines, the name last: an id is never cut, whatever the width
    rows = [(h.id, h.type, h.origin, h.marking or "-",
             h.name.replace("\n", " ") + (" (revoked)" if h.revoked else ""))
            for h in found.hits]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False))
                         + "  " + r[4] + "\n")
    if found.more:
        err_console.print(f"more results follow: --offset {offset + limit}")


def _hit_row(h: Hit) -> dict[str, Any]:
    return {"id": h.id, "type": h.type, "name": h.name, "origin": h.origin,
            "marking": h.marking or None, "revoked": h.revoked,
            "date_added": format_micros(h.date_added)}
