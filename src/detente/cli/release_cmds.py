"""``detente release``: catch partners up now, in the foreground, with a progress bar.

The same function the ``serve`` worker runs every ``release_interval_s``
(:func:`detente.release.release_pending`); useful when the node is not served, or to
clear a backlog before serving.  Killed at any moment, it loses nothing: each chunk is
one transaction, and the next run (or ``serve``) resumes at the partner's cursor.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from detente.cli.app import HomeOption, console, err_console, open_node
from detente.node import Node
from detente.release import ReleaseRun, release_pending

__all__ = ["progress_bar", "register"]


def register(app: typer.Typer) -> None:
    app.command("release")(release)


@contextlib.contextmanager
def progress_bar(what: str, total: int | None, *, enabled: bool
                 ) -> Iterator[Callable[[int], None]]:
    """A Rich bar on stderr with the count and the rate; yields ``advance(n)``."""
    shown = enabled and err_console.is_terminal
    columns = [TextColumn(what), BarColumn(),
               MofNCompleteColumn() if total else TextColumn("{task.completed:,}"),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn()]
    with Progress(*columns, console=err_console, disable=not shown, transient=True) as bar:
        task = bar.add_task(what, total=total, rate="")

        def advance(n: int) -> None:
            bar.advance(task, n)
            t = bar.tasks[0]
            elapsed = t.elapsed or 0.0
            bar.update(task, rate=f"{t.completed / elapsed:,.0f}/s" if elapsed > 0 else "")

        yield advance


def pending_total(node: Node, partners: list[str]) -> int | None:
    """Versions to evaluate when every partner named is new (no cursor yet): the whole
    store each; otherwise unknown (the bar then shows the count and the rate only)."""
    cursors = node.releaser.cursors()
    if any(p in cursors for p in partners):
        return None
    return node.store.count() * len(partners)


def run_progress(advance: Callable[[int], None]) -> Callable[[ReleaseRun], None]:
    """Adapt running totals (``on_progress`` of catch-up/re-evaluation) to a bar."""
    seen = [0]

    def update(run: ReleaseRun) -> None:
        advance(run.evaluated - seen[0])
        seen[0] = run.evaluated

    return update


def release(
    home: HomeOption = None,
    partner: Annotated[list[str] | None, typer.Option(
        "--partner", help="only this partner (repeatable; default: every partner)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Release to partners what was stored since their last release, now (``serve`` does
    it in the background every release_interval_s)."""
    node = open_node(home)
    names = list(partner) if partner else [p.name for p in node.partners.all()]
    for name in names:
        node.partners.get(name)
    with progress_bar("releasing", pending_total(node, names), enabled=not as_json) as advance:
        done = release_pending(node.releaser, names,
                               on_chunk=lambda _p, run: advance(run.evaluated))
    rate = done.released / done.seconds if done.seconds > 0 else 0.0
    if as_json:
        out = {"partners": {n: {"evaluated": r.evaluated, "released": r.released,
                                "withheld": r.denied} for n, r in done.runs.items()},
               "evaluated": done.evaluated, "released": done.released,
               "withheld": done.denied, "seconds": round(done.seconds, 3),
               "released_elsewhere": done.elsewhere,
               "releases_per_second": round(rate, 1)}
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not names:
        console.print("no partners: nothing to release")
        return
    table = Table("partner", "evaluated", "released", "withheld")
    for n, r in done.runs.items():
        table.add_row(n, f"{r.evaluated:,}", f"{r.released:,}", f"{r.denied:,}")
    console.print(table)
    rest = ("every partner is caught up" if not done.elsewhere else
            f"{', '.join(done.elsewhere)}: being released by another process (a serve worker)")
    console.print(f"{done.released:,} views released in {done.seconds:.1f} s "
                  f"({rate:,.0f}/s); {rest}", highlight=False)
    from detente.cli.policy_cmds import FIX_DEFAULT, NO_DEFAULT

    examples = [why for r in done.runs.values() for _, why in r.denials]
    unmarked = sum(NO_DEFAULT in why for why in examples)
    if done.denied > done.released and unmarked * 2 > len(examples):
        console.print(f"[yellow]note:[/] most were withheld because they carry no TLP "
                      f"marking and this node has no default marking; {FIX_DEFAULT}",
                      highlight=False, soft_wrap=True)
