"""Policy commands: why may (or may not) a partner see an object?"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from detente.cli.app import HomeOption, console, open_node
from detente.errors import NotFoundError
from detente.policy.model import Decision

if TYPE_CHECKING:
    from detente.fingerprint import FingerprintDecision
    from detente.node import Node

policy_app = typer.Typer(help="Release policy: decisions and their reasons.",
                         no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


def _fingerprint(node: Node, d: Decision) -> FingerprintDecision | None:
    """Whether the released view carries this partner's fingerprint (None: not released)."""
    return node.fingerprinter.decide(dict(d.view)) if d.view is not None else None


def _decision_dict(node: Node, partner: str, d: Decision) -> dict[str, Any]:
    fp = _fingerprint(node, d)
    return {"partner": partner, "verdict": d.verdict.value, "reasons": list(d.reasons),
            "removed": list(d.removed), "onward": d.onward, "attribution": d.attribution,
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
