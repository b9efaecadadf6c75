"""`detente deconflict`: private set intersection with a partner or a coalition, and what
we offer.

    detente deconflict PARTNER --mode M (--items FILE | --observables | --operations FILE
                                         | --alignment FILE) [--grid G] [--json]
    detente deconflict --with P [--with P …] --threshold T [--reconstructor NODE]
                       (--observables FILE | --names FILE | --operations FILE) [--pointer]
                       [--grid G] [--json]
    detente deconflict load-operations FILE [--replace]
    detente deconflict budget [PARTNER] [--items N] [--queries N] [--ratio R]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import typer
from rich.table import Table
from typer.core import TyperGroup

from detente.cli.app import HomeOption, console, open_node
from detente.errors import UsageError, ValidationError

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


class _QueryByDefault(TyperGroup):
    """``detente deconflict PARTNER …`` runs the ``query`` subcommand, ``detente deconflict
    --with P …`` the ``coalition`` one."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["query", *args]
        elif args and args[0] not in self.commands and any(
                a == "--with" or a.startswith("--with=") for a in args):
            args = ["coalition", *args]
        return super().parse_args(ctx, args)


deconflict_app = typer.Typer(
    cls=_QueryByDefault, no_args_is_help=True,
    help="Private deconfliction (PSI) with a partner: `detente deconflict PARTNER --mode M "
         "(--items FILE | --observables | --operations FILE | --alignment FILE)`, or with a "
         "coalition: `detente deconflict --with P --with Q --threshold T [--reconstructor R] "
         "(--observables FILE | --names FILE | --operations FILE)`; T >= 3 needs a "
         "reconstructor R holding no items.")


def register(app: typer.Typer) -> None:
    app.add_typer(deconflict_app, name="deconflict")


def _dump(doc: Any) -> None:
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"{path} is not JSON: {exc}") from None


def _spec(node: Any, items: Path | None, observables: bool, operations: Path | None,
          alignment: Path | None, grid: str | None) -> Any:
    from detente.federation.psi.remote import ItemsSpec
    from detente.federation.psi.sets import parse_grid

    chosen = [x for x in (items, operations, alignment) if x is not None]
    if len(chosen) + int(observables) != 1:
        raise UsageError("choose one of --items FILE, --observables, --operations FILE, "
                         "--alignment FILE")
    if observables:
        return ItemsSpec.observables(node)
    if operations is not None:
        return ItemsSpec.operations_json(_read_json(operations), parse_grid(grid))
    assert chosen
    return ItemsSpec.from_json(_read_json(chosen[0]), alignment=alignment is not None)


@deconflict_app.command("query", hidden=True)
def query(
    partner: Annotated[str, typer.Argument(help="the partner to ask")],
    mode: Annotated[Literal["intersection", "cardinality", "pointer", "mutual"], typer.Option(
        "--mode", help="what each side learns: the shared items, their number, a contact "
                       "per conflict, or both sides the shared items")] = "intersection",
    items: Annotated[Path | None, typer.Option("--items", help="JSON list of observables, "
                                               "patterns or names, or a STIX bundle")] = None,
    observables: Annotated[bool, typer.Option("--observables",
                                              help="this node's own observables")] = False,
    operations: Annotated[Path | None, typer.Option("--operations", help="JSON list of "
                                                    "planned operations")] = None,
    alignment: Annotated[Path | None, typer.Option("--alignment", help="names of declared "
                                                   "targets; cardinality only")] = None,
    grid: Annotated[str | None, typer.Option("--grid", help="place-time grid, e.g. "
                                             "r8:d500:b3600:s0")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask PARTNER which of our items it holds too, as the mode allows."""
    from detente.federation.psi.remote import run_query

    node = open_node(home)
    spec = _spec(node, items, observables, operations, alignment, grid)
    if spec.kind == "alignment" and mode != "cardinality":
        raise UsageError("alignment is cardinality only", hint="add --mode cardinality")
    outcome = run_query(node, partner, mode, spec)
    if as_json:
        _dump(outcome.to_json())
        return
    console.print(f"{outcome.mode} with {partner} over {outcome.kind}: sent {outcome.sent} "
                  f"items, {partner} holds {outcome.responder_size}; "
                  f"[bold]{outcome.count}[/] shared", highlight=False)
    for label in outcome.matches or ():
        console.print(f"  match: {label}", highlight=False, markup=False)
    for p in outcome.pointers or ():
        console.print(f"  conflict: handle {p.handle} (session {outcome.session_id}) — "
                      f"contact {p.contact}",
                      highlight=False, markup=False)
    console.print(f"recorded in our ledger at #{outcome.ledger_index} (no items)",
                  highlight=False)


@deconflict_app.command("coalition", hidden=True)
def coalition(
    partners: Annotated[list[str], typer.Option("--with", help="another participant "
                                                "(repeat; 1 to 9 of them)")],
    threshold: Annotated[int, typer.Option("--threshold", min=2, help="report an item of "
                                           "ours when at least T participants, us "
                                           "included, hold it")] = 2,
    observables: Annotated[Path | None, typer.Option("--observables", help="JSON list of "
                                                     "observables or patterns, or a STIX "
                                                     "bundle")] = None,
    names: Annotated[Path | None, typer.Option("--names", help="JSON list of names "
                                               "({kind, name} or STIX objects)")] = None,
    operations: Annotated[Path | None, typer.Option("--operations", help="JSON list of "
                                                    "planned operations (pointer mode)")]
    = None,
    pointer: Annotated[bool, typer.Option("--pointer", help="also learn whom to call: the "
                                          "co-holders' contact pointers")] = False,
    reconstructor: Annotated[str | None, typer.Option(
        "--reconstructor", help="a partner that takes part holding no items and reconstructs "
                                "the run (required at T >= 3; at T = 2 one of the "
                                "participants is drawn)")] = None,
    grid: Annotated[str | None, typer.Option("--grid", help="place-time grid, e.g. "
                                             "r8:d500:b3600:s0")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask a coalition which of our items at least T of us hold, without anyone seeing the
    lists (over-threshold multi-party PSI; docs/deconfliction.md). At T >= 3 the run needs
    --reconstructor: a partner holding no items in it."""
    from detente.federation.psi.coalition import run_coalition
    from detente.federation.psi.remote import ItemsSpec
    from detente.federation.psi.sets import parse_grid

    chosen = [x for x in (observables, names, operations) if x is not None]
    if len(chosen) != 1:
        raise UsageError("choose one of --observables FILE, --names FILE, --operations FILE")
    if reconstructor is not None and reconstructor in partners:
        raise UsageError(f"--reconstructor {reconstructor} is also a participant (--with): "
                         f"the reconstructor holds no items in the run")
    node = open_node(home)
    if reconstructor == node.name:
        raise UsageError("--reconstructor names this node, which relays and holds items: "
                         "name a partner that holds none")
    if operations is not None:
        spec = ItemsSpec.operations_json(_read_json(operations), parse_grid(grid))
        pointer = True  # where and when never leave: operations are pointer mode only
    else:
        spec = ItemsSpec.from_json(_read_json(chosen[0]))
        wanted = "observables" if observables is not None else "names"
        if spec.kind != wanted:
            raise ValidationError(f"{chosen[0]} holds {spec.kind}, not {wanted}")
    if threshold > len(set(partners)) + 1:
        raise ValidationError(f"threshold {threshold} is more than the "
                              f"{len(set(partners)) + 1} participants")
    if threshold >= 3 and reconstructor is None:
        raise UsageError(f"threshold {threshold} needs --reconstructor NODE: a partner that "
                         f"takes part holding no items (a participant reconstructing could "
                         f"count the holders of its own items below the threshold)",
                         hint="or use --threshold 2")
    outcome = run_coalition(node, sorted(set(partners)), threshold, spec,
                            mode="pointer" if pointer else "membership",
                            reconstructor=reconstructor)
    if as_json:
        _dump(outcome.to_json())
        return
    r = outcome.spec.reconstructor
    console.print(f"coalition run {outcome.spec.run_id.hex()[:12]} over {spec.kind} with "
                  f"{', '.join(outcome.spec.participants)}, reconstructed by {r}"
                  f"{'' if outcome.spec.holding_reconstructor else ' (holding no items)'}: "
                  f"[bold]{len(outcome.matched)}[/] of our {len(spec.items)} items held by "
                  f"at least {threshold} of us ({outcome.seconds:.1f} s)", highlight=False)
    for label in outcome.matched:
        console.print(f"  held by >= {threshold}: {label}", highlight=False, markup=False)
        for p in outcome.pointers.get(label, ()):
            console.print(f"    call {p.node}: {p.contact} (handle {p.handle})",
                          highlight=False, markup=False)
    console.print(f"recorded in our ledger at #{outcome.ledger_index} (no items); each "
                  f"participant recorded its own", highlight=False)


@deconflict_app.command("load-operations")
def load_operations(
    file: Annotated[Path, typer.Argument(help="JSON list of {name, latitude, longitude, "
                                         "radius_m, start, end, contact}")],
    replace: Annotated[bool, typer.Option("--replace", help="drop operations not in FILE")]
    = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load this node's planned operations (what partners' operations are matched against)."""
    from detente.federation.psi.sets import OperationsBook, parse_operations

    node = open_node(home)
    ops = parse_operations(_read_json(file))
    stored = OperationsBook(node.store.engine).load(ops, replace=replace)
    if as_json:
        _dump([{"name": o.name, "handle": o.handle} for o in stored])
        return
    table = Table("operation", "handle (partners see a fresh one per session)", "contact")
    for o in stored:
        table.add_row(o.name, o.handle, o.contact or "(node default)")
    console.print(table)


def _not_positive(value: float) -> float:
    raise typer.BadParameter(f"{value:g} is not > 0")


@deconflict_app.command("budget")
def budget(
    partner: Annotated[str, typer.Argument(help="partner name, or * for the default")] = "*",
    items: Annotated[int | None, typer.Option("--items", min=1, help="items per query")]
    = None,
    queries: Annotated[int | None, typer.Option("--queries", min=0, help="queries per day")]
    = None,
    ratio: Annotated[float | None, typer.Option(
        "--ratio", help="max query / set size (> 0)",
        callback=lambda r: r if r is None or r > 0 else _not_positive(r))] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show or set the query budget a partner gets (refusals name the limit hit)."""
    import dataclasses

    from detente.federation.psi.budgets import DEFAULT, BudgetTable

    node = open_node(home)
    if partner != DEFAULT:
        node.partners.get(partner)
    table = BudgetTable(node.store.engine)
    current = table.budgets()
    chosen = current.default if partner == DEFAULT else current.for_partner(partner)
    if (items, queries, ratio) != (None, None, None):
        chosen = dataclasses.replace(
            chosen, items_per_query=chosen.items_per_query if items is None else items,
            queries_per_day=chosen.queries_per_day if queries is None else queries,
            max_set_ratio=chosen.max_set_ratio if ratio is None else ratio)
        table.set(partner, chosen)
    doc = {"partner": partner, **dataclasses.asdict(chosen)}
    if as_json:
        _dump(doc)
        return
    console.print(f"{partner}: {chosen.items_per_query} items per query, "
                  f"{chosen.queries_per_day} queries per day, query at most "
                  f"{chosen.max_set_ratio:g}× our set", highlight=False)
