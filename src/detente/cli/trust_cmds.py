"""Evidence and grades: the analyst's verdicts, one object's credibility, open reviews."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Annotated

import orjson
import typer

from detente.cli.app import HomeOption, console, open_node
from detente.node import Node
from detente.stix.timestamps import format_micros
from detente.trust import CREDIBILITY_NAMES

evidence_app = typer.Typer(help="Evidence about partners' reports: confirm or refute.",
                           no_args_is_help=True)
review_app = typer.Typer(help="Reviews opened by refuted high-importance reports.",
                         no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]
WhyOption = Annotated[str, typer.Option("--why", help="the reason, recorded in the ledger")]


def register(app: typer.Typer) -> None:
    app.add_typer(evidence_app, name="evidence")
    app.add_typer(review_app, name="review")
    app.command("grade")(grade)


def report_tier_changes(node: Node) -> None:
    """Say what each tier change this command caused did to the partner's releases."""
    for change, run in node.applied_tier_changes:
        console.print(f"{change.partner}: tier {change.old} -> {change.new} ({change.reason}); "
                      f"{run.released} newly released, {run.withdrawn} withdrawn",
                      highlight=False)


def _verdict(object_id: str, why: str, home: HomeOption, refute: bool, as_json: bool) -> None:
    node = open_node(home)
    judged = (node.trust.refute if refute else node.trust.confirm)(object_id, why)
    verb = "refuted" if refute else "confirmed"
    if as_json:
        changes = [{"partner": c.partner, "old_tier": c.old, "new_tier": c.new,
                    "reason": c.reason, "released": run.released, "withdrawn": run.withdrawn}
                   for c, run in node.applied_tier_changes]
        out = {"object": object_id, "verdict": verb, "judged": list(judged),
               "tier_changes": changes}
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    who = ", ".join(judged) if judged else "no partner"
    console.print(f"{object_id} {verb}; reports judged from: {who}", highlight=False)
    report_tier_changes(node)


@evidence_app.command("confirm")
def evidence_confirm(object_id: Annotated[str, typer.Argument(help="a STIX id")],
                     why: WhyOption, home: HomeOption = None,
                     as_json: JsonOption = False) -> None:
    """Confirm an object's claims (our own check): evidence for every source of them."""
    _verdict(object_id, why, home, refute=False, as_json=as_json)


@evidence_app.command("refute")
def evidence_refute(object_id: Annotated[str, typer.Argument(help="a STIX id")],
                    why: WhyOption, home: HomeOption = None,
                    as_json: JsonOption = False) -> None:
    """Refute an object's claims; a refuted important report drops its partner's tier."""
    _verdict(object_id, why, home, refute=True, as_json=as_json)


def grade(object_id: Annotated[str, typer.Argument(help="a STIX id")],
          home: HomeOption = None, as_json: JsonOption = False) -> None:
    """One object's information credibility (1-6), STIX confidence and the reasons."""
    node = open_node(home)
    g = node.trust.grade(object_id)
    if as_json:
        out = {**asdict(g), "admiralty": g.admiralty, "meaning": g.meaning}
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    confidence = "not present" if g.confidence is None else str(g.confidence)
    console.print(f"{object_id} from {g.partner}: [bold]{g.admiralty}[/] — "
                  f"{CREDIBILITY_NAMES[g.credibility]} (STIX confidence {confidence})",
                  highlight=False)
    for reason in g.reasons:
        console.print(f"  - {reason}", highlight=False)


@review_app.command("list")
def review_list(home: HomeOption = None, all_: Annotated[bool, typer.Option(
        "--all", help="closed reviews too")] = False, as_json: JsonOption = False) -> None:
    """Reviews of partners whose high-importance reports were refuted."""
    node = open_node(home)
    reviews = node.trust.reviews(open_only=not all_)
    if as_json:
        out = [{**asdict(r), "opened_at": format_micros(r.opened_at),
                "closed_at": None if r.closed_at is None else format_micros(r.closed_at)}
               for r in reviews]
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not reviews:
        console.print("no open reviews")
    for r in reviews:
        state = "open" if r.closed_at is None else f"closed: {r.closed_why}"
        console.print(f"#{r.id} {r.partner}: {r.reason} (tier {r.tier_before} -> at most "
                      f"{r.tier_cap}; {state})", highlight=False)


@review_app.command("close")
def review_close(review_id: int, why: WhyOption, home: HomeOption = None) -> None:
    """Close a review; the partner's tier is recomputed (standing restarts at the refutation)."""
    node = open_node(home)
    r = node.trust.close_review(review_id, why)
    console.print(f"review #{r.id} of {r.partner} closed")
    report_tier_changes(node)
