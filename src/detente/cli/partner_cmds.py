"""Partner and client commands: who we share with, and the credentials acting for them."""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer
from rich.table import Table

from detente.cli.app import HomeOption, console, http_url, open_node
from detente.cli.release_cmds import progress_bar, run_progress
from detente.ledger import Entry
from detente.node import Node
from detente.partners import TIER_NAMES, Partner
from detente.release import ReleaseRun
from detente.stix.timestamps import format_micros

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
    trust = node.trust.summary(p.name)
    rel, credit = trust.reliability, trust.credit
    return {
        "name": p.name, "identity": p.identity_id, "url": p.url,
        "public_key": p.public_key_b64, "communities": sorted(p.communities),
        "tier": tier, "tier_name": TIER_NAMES[tier], "operator_tier": p.base_tier,
        "earned_tier": node.trust.tier(p),
        "max_tier": p.max_tier, "min_tier": p.min_tier, "cap_reason": p.cap_reason,
        "grade": trust.grade,
        "reliability": {"mean": round(rel.mean, 3), "low": round(rel.low, 3),
                        "high": round(rel.high, 3), "evidence": round(rel.n, 2)},
        "evidence": asdict(trust.counts),
        "credit": {"first_reports": credit.first_reports, "corroborated": credit.corroborated,
                   "confirmed": credit.confirmed, "median_lead_s": credit.median_lead_s},
        "reviews_open": trust.reviews_open,
    }


def _evidence_cell(r: dict[str, object]) -> str:
    e = r["evidence"]
    assert isinstance(e, dict)
    return (f"{e['assertions']} rep, {e['corroborated']} corr, {e['confirmed']} conf, "
            f"{e['refuted']} ref, {e['expired']} exp, {e['echoes']} echo")


def _credit_cell(r: dict[str, object]) -> str:
    c = r["credit"]
    assert isinstance(c, dict)
    lead = c["median_lead_s"]
    lead_text = f", lead {lead / 3600:.1f} h" if isinstance(lead, float) else ""
    return f"{c['corroborated'] + c['confirmed']}/{c['first_reports']} firsts{lead_text}"


def _public_key(value: str) -> str:
    """An option callback: an Ed25519 public key in base64, or a usage error."""
    from detente.errors import DetenteError
    from detente.partners.model import parse_public_key

    try:
        parse_public_key(value)
    except DetenteError as exc:
        raise typer.BadParameter(exc.message) from None
    return value


@partner_app.command("add")
def partner_add(
    name: Annotated[str, typer.Argument(help="the partner's node name, e.g. fr")],
    url: Annotated[str, typer.Option("--url", help="the partner node's URL",
                                     callback=http_url)],
    key: Annotated[str, typer.Option("--key", help="its Ed25519 public key (base64)",
                                     callback=_public_key)],
    home: HomeOption = None,
    community: Annotated[list[str] | None, typer.Option(
        "--community", help="a community it belongs to (repeatable)")] = None,
    tier: Annotated[int, typer.Option("--tier", min=0, max=4,
                                      help="starting trust tier 0-4")] = 1,
    identity: Annotated[str | None, typer.Option("--identity",
                                                 help="its STIX identity id")] = None,
) -> None:
    """Add a partner.  What it may receive is released in the background by ``detente
    serve`` (or at once by ``detente release --partner NAME``): adding it never waits for
    a catch-up over the whole store."""
    node = open_node(home)
    p = node.partners.add(name, url=url, public_key=key,
                          communities=frozenset(community or []), tier=tier,
                          identity_id=identity)
    _record(node, "policy-change", p.name, f"partner added at tier {tier}")
    pending = node.store.count()
    console.print(f"added partner [bold]{p.name}[/] (tier {tier}, {TIER_NAMES[tier]}); "
                  f"{pending:,} stored object versions to evaluate for it: 'detente serve' "
                  f"releases them in the background, or run 'detente release --partner "
                  f"{p.name}' now", highlight=False)
    _warn_unmarked(node, p.name)


def _warn_unmarked(node: Node, partner: str) -> None:
    """Say so when most objects would be withheld only for want of a default marking."""
    from detente.cli.policy_cmds import FIX_DEFAULT, unmarked_share

    withheld, sampled = unmarked_share(node, partner)
    if sampled and withheld * 2 > sampled:
        console.print(f"[yellow]note:[/] {withheld} of {sampled} stored objects sampled carry "
                      f"no TLP marking and this node has no default marking, so {partner} "
                      f"will not receive them; {FIX_DEFAULT}", highlight=False,
                      soft_wrap=True)


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
    table = Table("name", "tier", "grade", "reliability", "evidence", "credit", "communities")
    for r in rows:
        rel = r["reliability"]
        assert isinstance(rel, dict)
        table.add_row(str(r["name"]), f"{r['tier']} {r['tier_name']}", str(r["grade"]),
                      f"{rel['mean']:.2f} [{rel['low']:.2f}, {rel['high']:.2f}]",
                      _evidence_cell(r), _credit_cell(r),
                      ", ".join(r["communities"]))  # type: ignore[arg-type]
    console.print(table)


@partner_app.command("show")
def partner_show(name: str, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Show one partner."""
    node = open_node(home)
    info = _partner_dict(node, node.partners.get(name))
    history = [{"time": format_micros(h.time), "kind": h.kind, "object": h.object_id,
                "detail": h.detail} for h in node.trust.history(name)]
    if as_json:
        out = {**info, "history": history}
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for key, value in info.items():
        console.print(f"{key:<14} {value}", highlight=False)
    console.print("history (newest first):")
    for h in history:
        console.print(f"  {h['time']}  {h['kind']:<11} {h['object'] or '-'}  {h['detail']}",
                      highlight=False)


def reevaluate_partner(node: Node, name: str, *, enabled: bool = True) -> ReleaseRun:
    """Re-decide what was released to ``name`` (everything up to its cursor), with a
    progress bar: views now denied are withdrawn before the command returns."""
    evaluated = node.releaser.cursors().get(name)
    total = node.store.count() if evaluated is not None and evaluated == \
        node.store.last_added() else None
    with progress_bar("re-evaluating", total, enabled=enabled) as advance:
        return node.releaser.reevaluate(name, on_progress=run_progress(advance))


def _run_json(run: ReleaseRun) -> dict[str, int]:
    return {"evaluated": run.evaluated, "released": run.released, "withheld": run.denied,
            "replaced": run.replaced, "withdrawn": run.withdrawn}


def _dump(doc: object) -> None:
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


def _cap(node: Node, name: str, why: str, as_json: bool, **values: int | None) -> None:
    field, value = next(iter(values.items()))
    node.partners.update(name, **values, cap_reason=why)
    label = "cap (max tier)" if field == "max_tier" else "floor (min tier)"
    detail = f"{label} {'removed' if value is None else value}: {why}"
    _record(node, "cap", name, detail)
    run = reevaluate_partner(node, name, enabled=not as_json)
    tier = node.partners.tier_of(node.partners.get(name))
    if as_json:
        _dump({"partner": name, "cap": detail, "tier": tier, "tier_name": TIER_NAMES[tier],
               **_run_json(run)})
        return
    console.print(f"{name}: {detail}; tier now {tier} ({TIER_NAMES[tier]}); "
                  f"{run.released} newly released, {run.replaced} views replaced, "
                  f"{run.withdrawn} withdrawn", highlight=False)


@partner_app.command("cap")
def partner_cap(
    name: str,
    why: Annotated[str, typer.Option("--why", help="the reason, recorded in the ledger")],
    max_tier: Annotated[int | None, typer.Option("--max-tier", min=0, max=4,
                                                 help="the highest tier it may have")] = None,
    min_tier: Annotated[int | None, typer.Option("--min-tier", min=0, max=4,
                                                 help="a floor (same as 'partner floor')")]
    = None,
    clear: Annotated[bool, typer.Option("--clear", help="remove the cap")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cap (or, with --min-tier, floor) a partner's tier whatever its evidence."""
    if not why.strip():
        raise typer.BadParameter("--why must say why")
    given = [x for x in (max_tier, min_tier) if x is not None]
    if clear == bool(given) or len(given) > 1:
        raise typer.BadParameter("give exactly one of --max-tier N, --min-tier N or --clear")
    node = open_node(home)
    if min_tier is not None and max_tier is None:
        _cap(node, name, why, as_json, min_tier=min_tier)
        return
    _cap(node, name, why, as_json, max_tier=None if clear else max_tier)


@partner_app.command("floor")
def partner_floor(
    name: str,
    why: Annotated[str, typer.Option("--why", help="the reason, recorded in the ledger")],
    min_tier: Annotated[int | None, typer.Option("--min-tier", min=0, max=4,
                                                 help="the lowest tier it may have")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="remove the floor")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Floor a partner's tier (the operator vouches for it whatever its evidence)."""
    if (min_tier is None) != clear:
        raise typer.BadParameter("give --min-tier N or --clear")
    if not why.strip():
        raise typer.BadParameter("--why must say why")
    _cap(open_node(home), name, why, as_json, min_tier=None if clear else min_tier)


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
                     home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Set the operator's tier for a partner and re-evaluate what it may see."""
    node = open_node(home)
    node.partners.update(name, base_tier=tier)
    _record(node, "tier-change", name, f"operator set tier {tier}")
    run = reevaluate_partner(node, name, enabled=not as_json)
    if as_json:
        _dump({"partner": name, "operator_tier": tier, **_run_json(run)})
        return
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
def client_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List client credentials (never their secrets)."""
    node = open_node(home)
    if as_json:
        _dump([{"name": c.name, "user": c.user, "partner": c.partner,
                "created": format_micros(c.created_at)} for c in node.partners.clients()])
        return
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
