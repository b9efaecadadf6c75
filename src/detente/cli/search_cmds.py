"""``detente search``: find objects by value, name or text in this node's own store.

Operator-side only: it reads the local store, never a partner's view (partners have no
search; what they may read is what the release path served them)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer

from detente.cli.app import HomeOption, err_console, open_node
from detente.errors import UsageError, ValidationError
from detente.stix.timestamps import format_micros
from detente.store.search import Find, Hit, parse_query


def register(app: typer.Typer) -> None:
    app.command("search")(search)


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
    ATT&CK id; names matches first, then newest first.  Without QUERY, list the newest."""
    if query is not None and not query.strip():
        raise UsageError("the search query is empty",
                         hint="give a value, a name or words, or no QUERY to list the newest")
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
        out = {"results": [_row(h) for h in found.hits], "more": found.more}
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


def _row(h: Hit) -> dict[str, Any]:
    return {"id": h.id, "type": h.type, "name": h.name, "origin": h.origin,
            "marking": h.marking or None, "revoked": h.revoked,
            "date_added": format_micros(h.date_added)}
