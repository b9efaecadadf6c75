"""Policy commands: why may (or may not) a partner see an object?"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from detente.cli.app import HomeOption, console, one_of, open_node
from detente.errors import ConfigError, NotFoundError
from detente.policy.model import Decision
from detente.policy.rules import TLP_LEVELS

if TYPE_CHECKING:
    from detente.node import Node

if TYPE_CHECKING:
    from detente.fingerprint import FingerprintDecision
    from detente.node import Node

policy_app = typer.Typer(help="Release policy: decisions and their reasons.",
                         no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


#: the policy's words when an unmarked object meets a node without a default marking
NO_DEFAULT = "has no default marking"
FIX_DEFAULT = ("set a default marking for objects that carry none: 'detente policy "
               "default-marking green' (partners sharing a community; or clear, amber), or "
               "mark the objects before ingesting them")


def withheld_for_no_marking(d: Decision) -> bool:
    """Whether ``d`` withholds an object only a default marking would have released."""
    return not d.allowed and any(NO_DEFAULT in r for r in d.reasons)


def unmarked_share(node: Node, partner: str, sample: int = 100) -> tuple[int, int]:
    """Of up to ``sample`` stored objects (the first stored), how many ``partner`` would
    be refused only for want of a default marking: (withheld so, sampled)."""
    from detente.store.base import Query

    if node.releaser.default_tlp is not None:
        return 0, 0
    to = node.partners.get(partner)
    page = node.store.list(Query(limit=sample))
    withheld = sum(withheld_for_no_marking(node.releaser.decide(o, to)) for o in page.objects)
    return withheld, len(page.objects)


def _fingerprint(node: Node, d: Decision) -> FingerprintDecision | None:
    """Whether the released view carries this partner's fingerprint (None: not released)."""
    return node.fingerprinter.decide(dict(d.view)) if d.view is not None else None


def _decision_dict(node: Node, partner: str, d: Decision) -> dict[str, Any]:
    fp = _fingerprint(node, d)
    return {"partner": partner, "verdict": d.verdict.value, "reasons": list(d.reasons),
            "removed": list(d.removed), "onward": d.onward, "attribution": d.attribution,
            "fix": FIX_DEFAULT if withheld_for_no_marking(d) else None,
            "fingerprint": None if fp is None else {"fingerprinted": fp.fingerprinted,
                                                    "reason": fp.reason}}


@policy_app.command("explain")
def explain(
    object_id: Annotated[str, typer.Argument(help="a STIX id")],
    partner: Annotated[str, typer.Option("--partner", help="the partner to decide for")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Explain the release decision for one object and one partner."""
    node = open_node(home)
    obj = node.store.get(object_id)
    if obj is None:
        raise NotFoundError(f"no object {object_id} in this node")
    d = node.releaser.decide(obj, node.partners.get(partner))
    if as_json:
        sys.stdout.write(orjson.dumps(_decision_dict(node, partner, d),
                                      option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    console.print(f"[bold]{d.verdict.value}[/] {object_id} → {partner}", highlight=False)
    for reason in d.reasons:
        console.print(f"  • {reason}", highlight=False)
    for path in d.removed:
        console.print(f"  − removed {path}", highlight=False)
    if d.allowed:
        console.print(f"  onward sharing: {d.onward}; attribution: {d.attribution}")
    fp = _fingerprint(node, d)
    if fp is not None:
        console.print(f"  fingerprint: {'yes' if fp else 'no'} ({fp.reason})", highlight=False)
    if withheld_for_no_marking(d):
        console.print(f"  [bold]fix:[/] {FIX_DEFAULT}", highlight=False, soft_wrap=True)


@policy_app.command("matrix")
def matrix(
    object_id: Annotated[str, typer.Argument(help="a STIX id")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every partner's decision for one object: who can see this, and why."""
    node = open_node(home)
    rows = node.releaser.matrix(object_id)
    if as_json:
        out = [_decision_dict(node, p.name, d) for p, d in rows]
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not rows:
        console.print("no partners yet: nobody can see anything")
        return
    table = Table("partner", "tier", "decision", "reasons", "removed", "fingerprint")
    for p, d in rows:
        fp = _fingerprint(node, d)
        table.add_row(p.name, str(node.partners.tier_of(p)), d.verdict.value,
                      "\n".join(d.reasons), "\n".join(d.removed) or "-",
                      "-" if fp is None else ("yes: " if fp else "no: ") + fp.reason)
    console.print(table)
    if any(withheld_for_no_marking(d) for _, d in rows):
        console.print(f"[bold]fix:[/] {FIX_DEFAULT}", highlight=False, soft_wrap=True)


@policy_app.command("default-marking")
def default_marking(
    level: Annotated[str, typer.Argument(
        help=f"TLP level for objects that carry none: {', '.join(TLP_LEVELS)}; or none "
             "(such objects are then never released)",
        callback=lambda v: one_of((*TLP_LEVELS, "none"))(v.lower()))],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set the node's default marking (detente.toml) and re-decide, for every partner,
    what was released under the old one: newly releasable views are released, views no
    longer allowed are withdrawn."""
    from detente.cli.partner_cmds import reevaluate_partner
    from detente.ledger import Entry
    from detente.settings import load_settings, update_settings

    node = open_node(home)
    evaluated = node.releaser.cursors()
    value = "" if level == "none" else level
    old = str(node.settings["default_marking"]) or "none"
    update_settings(node.home, default_marking=value)
    node.settings = load_settings(node.home)
    if str(node.settings["default_marking"]) != value:
        raise ConfigError("DETENTE_DEFAULT_MARKING overrides detente.toml in this shell",
                          hint="unset DETENTE_DEFAULT_MARKING")
    node.releaser.default_tlp = value or None
    label = f"TLP:{value.upper()}" if value else "none"
    node.ledger.append(Entry(kind="policy-change", time=datetime.now(UTC),
                             detail=f"default marking {old} -> {level}"))
    runs = {p.name: reevaluate_partner(node, p.name, enabled=not as_json)
            for p in node.partners.all()}
    if as_json:
        doc = {"default_marking": value or None, "previous": None if old == "none" else old,
               "partners": {n: {"released": r.released, "withdrawn": r.withdrawn,
                                "replaced": r.replaced, "withheld": r.denied}
                            for n, r in runs.items()}}
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    console.print(f"default marking: {label} (was {old}); objects without a TLP marking "
                  f"are {'released as ' + label if value else 'never released'}",
                  highlight=False)
    for name, r in runs.items():
        if name not in evaluated:
            console.print(f"  {name}: nothing released to it yet ('detente release', or "
                          "serve in the background, releases under the new default)",
                          highlight=False)
            continue
        console.print(f"  {name}: {r.released} newly released, {r.replaced} views replaced, "
                      f"{r.withdrawn} withdrawn", highlight=False)
    console.print("[dim]a running 'detente serve' uses the new default after a restart[/]")
