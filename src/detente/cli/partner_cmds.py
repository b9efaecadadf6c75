"""Partner and client commands: who we share with, and the credentials acting for them."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer
from rich.table import Table

from detente.cli.app import HomeOption, console, open_node
from detente.ledger import Entry
from detente.node import Node
from detente.partners import TIER_NAMES, Partner

partner_app = typer.Typer(help="Partners: other nodes this node shares with.",
                          no_args_is_help=True)
client_app = typer.Typer(help="TAXII client credentials (Basic or bearer).",
                         no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(app: typer.Typer) -> None:
    app.add_typer(partner_app, name="partner")
    app.add_typer(client_app, name="client")


def _record(node: Node, kind: str, partner: str, detail: str) -> None:
    node.ledger.append(Entry(kind=kind, time=datetime.now(UTC), partner=partner, detail=detail))


def _partner_dict(node: Node, p: Partner) -> dict[str, object]:
    tier = node.partners.tier_of(p)
    return {
        "name": p.name, "identity": p.identity_id, "url": p.url,
        "public_key": p.public_key_b64, "communities": sorted(p.communities),
        "tier": tier, "tier_name": TIER_NAMES[tier], "operator_tier": p.base_tier,
        "max_tier": p.max_tier, "min_tier": p.min_tier, "cap_reason": p.cap_reason,
    }


@partner_app.command("add")
def partner_add(
    name: Annotated[str, typer.Argument(help="the partner's node name, e.g. fr")],
    url: Annotated[str, typer.Option("--url", help="the partner node's URL")],
    key: Annotated[str, typer.Option("--key", help="its Ed25519 public key (base64)")],
    home: HomeOption = None,
    community: Annotated[list[str] | None, typer.Option(
        "--community", help="a community it belongs to (repeatable)")] = None,
    tier: Annotated[int, typer.Option("--tier", min=0, max=4,
                                      help="starting trust tier 0-4")] = 1,
    identity: Annotated[str | None, typer.Option("--identity",
                                                 help="its STIX identity id")] = None,
) -> None:
    """Add a partner; what it may receive is evaluated at once."""
    node = open_node(home)
    p = node.partners.add(name, url=url, public_key=key,
                          communities=frozenset(community or []), tier=tier,
                          identity_id=identity)
    _record(node, "policy-change", p.name, f"partner added at tier {tier}")
    run = node.releaser.catch_up(p.name)
    console.print(f"added partner [bold]{p.name}[/] (tier {tier}, {TIER_NAMES[tier]}); "
                  f"{run.released} object versions released to it, {run.denied} withheld")


@partner_app.command("list")
def partner_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List partners with their tier."""
    node = open_node(home)
    rows = [_partner_dict(node, p) for p in node.partners.all()]
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not rows:
        console.print("no partners yet: add one with 'detente partner add NAME --url URL "
                      "--key KEY'")
        return
    table = Table("name", "tier", "communities", "url")
    for r in rows:
        table.add_row(str(r["name"]), f"{r['tier']} {r['tier_name']}",
                      ", ".join(r["communities"]), str(r["url"]))  # type: ignore[arg-type]
    console.print(table)


@partner_app.command("show")
def partner_show(name: str, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Show one partner."""
    node = open_node(home)
    info = _partner_dict(node, node.partners.get(name))
    if as_json:
        sys.stdout.write(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for key, value in info.items():
        console.print(f"{key:<14} {value}", highlight=False)


@partner_app.command("remove")
def partner_remove(name: str, home: HomeOption = None) -> None:
    """Remove a partner; everything released to it is withdrawn from its collection."""
    node = open_node(home)
    node.partners.remove(name)
    node.releaser.forget_partner(name)
    _record(node, "policy-change", name, "partner removed")
    console.print(f"removed partner {name}")


@partner_app.command("set-tier")
def partner_set_tier(name: str, tier: Annotated[int, typer.Argument(min=0, max=4)],
                     home: HomeOption = None) -> None:
    """Set the operator's tier for a partner and re-evaluate what it may see."""
    node = open_node(home)
    node.partners.update(name, base_tier=tier)
    _record(node, "tier-change", name, f"operator set tier {tier}")
    run = node.releaser.reevaluate(name)
    console.print(f"{name}: tier {tier}; {run.released} newly released, {run.replaced} "
                  f"views replaced, {run.withdrawn} withdrawn")


@client_app.command("add")
def client_add(
    name: Annotated[str, typer.Argument(help="a name for this credential")],
    as_partner: Annotated[str | None, typer.Option(
        "--as-partner", help="the partner this client acts for")] = None,
    operator: Annotated[bool, typer.Option(
        "--operator", help="an operator credential for local administration")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a credential for an ordinary TAXII client; the secret is shown once."""
    if (as_partner is None) == (not operator):
        raise typer.BadParameter("give exactly one of --as-partner P or --operator")
    node = open_node(home)
    client, secret = node.partners.add_client(name, as_partner)
    if as_json:
        out = {"user": client.user, "password": secret, "partner": client.partner}
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
        return
    who = f"partner {client.partner}" if client.partner else "the operator"
    console.print(f"client [bold]{client.name}[/] acts for {who}")
    console.print(f"user     {client.user}\npassword {secret}", highlight=False)
    console.print("[dim]the password is shown only once; use it with HTTP Basic, or "
                  "as a bearer token 'user:password'[/]")


@client_app.command("list")
def client_list(home: HomeOption = None) -> None:
    """List client credentials (never their secrets)."""
    node = open_node(home)
    table = Table("name", "acts for", "created")
    for c in node.partners.clients():
        created = datetime.fromtimestamp(c.created_at / 1e6, UTC).isoformat(timespec="seconds")
        table.add_row(c.name, c.partner or "operator", created)
    console.print(table)


@client_app.command("remove")
def client_remove(name: str, home: HomeOption = None) -> None:
    """Revoke a client credential."""
    node = open_node(home)
    node.partners.remove_client(name)
    console.print(f"removed client {name}")
