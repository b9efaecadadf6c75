"""Evidence and grades: the analyst's verdicts, one object's credibility, open reviews; and
requests for information between partners (`detente rfi`)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from detente.cli.app import HomeOption, console, open_node
from detente.errors import DetenteError, UsageError
from detente.node import Node
from detente.stix.timestamps import format_micros
from detente.trust import CREDIBILITY_NAMES

evidence_app = typer.Typer(help="Evidence about partners' reports: confirm or refute.",
                           no_args_is_help=True)
review_app = typer.Typer(help="Reviews opened by refuted high-importance reports.",
                         no_args_is_help=True)
rfi_app = typer.Typer(help="Requests for information: ask chosen partners, answer, credit.",
                      no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]
WhyOption = Annotated[str, typer.Option("--why", help="the reason, recorded in the ledger")]


def register(app: typer.Typer) -> None:
    app.add_typer(evidence_app, name="evidence")
    app.add_typer(review_app, name="review")
    app.add_typer(rfi_app, name="rfi")
    app.command("credit")(credit)
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


@evidence_app.command("sighting")
def evidence_sighting(
        object_id: Annotated[str, typer.Argument(help="the sighted object's STIX id")],
        home: HomeOption = None,
        count: Annotated[int, typer.Option("--count", help="times seen")] = 1,
        first_seen: Annotated[str | None, typer.Option(
            "--first-seen", help="ISO 8601, e.g. 2025-11-05T14:30Z (default: last seen)")
        ] = None,
        last_seen: Annotated[str | None, typer.Option(
            "--last-seen", help="ISO 8601 (default: now)")] = None,
        false_positive: Annotated[bool, typer.Option(
            "--false-positive", help="seen, but benign: refutes the reports")] = False,
        note: Annotated[str, typer.Option("--note", help="free text for the sighting")] = "",
        tlp: Annotated[str, typer.Option("--tlp", help="the sighting's own TLP marking")
                       ] = "amber") -> None:
    """Record our sighting of an object ("seen in our network"): a STIX sighting ingested
    like any local object; it confirms the object's sources, or refutes them when marked
    --false-positive."""
    from detente.usecases.sighting import parse_when, record_sighting

    try:
        first, last = (parse_when(first_seen, field="--first-seen"),
                       parse_when(last_seen, field="--last-seen"))
    except DetenteError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None
    node = open_node(home)
    result = record_sighting(node, object_id, count=count, first_seen=first, last_seen=last,
                             false_positive=false_positive, note=note, tlp=tlp)
    what = "false positive" if result.false_positive else "sighting"
    console.print(f"{what} {result.sighting['id']} of {object_id} recorded "
                  f"(count {count})", highlight=False)
    report_tier_changes(node)


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


# -- requests for information --------------------------------------------------------------
def _dump(doc: Any) -> None:
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


def _release_hint(partners: list[str]) -> None:
    console.print(f"released to {', '.join(partners)} by serve's background releaser (or now: "
                  f"detente release{''.join(f' --partner {p}' for p in partners[:1])})",
                  highlight=False)


@rfi_app.command("ask")
def rfi_ask(
    text: Annotated[str, typer.Argument(help="the question")],
    to: Annotated[list[str] | None, typer.Option(
        "--to", help="a partner to ask (repeatable); with --private: a candidate "
                     "(default: every partner)")] = None,
    about: Annotated[list[str] | None, typer.Option(
        "--about", help="a STIX id the question is about (repeatable)")] = None,
    marking: Annotated[str, typer.Option(
        "--marking", help="TLP level of the question (it reveals interest)")] = "amber",
    deadline: Annotated[str | None, typer.Option(
        "--deadline", help="answer wanted by (e.g. 2026-12-31 or 2026-12-31T18:00:00Z)")]
    = None,
    private: Annotated[bool, typer.Option(
        "--private", help="ask only the partners that hold --observable (decided by "
                          "private set intersection; the others receive nothing)")] = False,
    observable: Annotated[str | None, typer.Option(
        "--observable", help="with --private: TYPE:VALUE (e.g. domain-name:amaq.example) "
                             "or a simple STIX pattern")] = None,
    psi_mode: Annotated[str, typer.Option(
        "--psi-mode", help="with --private: intersection (we compare: a partner cannot "
                           "lie its way to the question) or pointer (the holder's handle "
                           "too, but a lying partner gets the question; docs/rfi.md)")]
    = "intersection",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the named partners (and only them) a question; --private: only those holding V.

    With --private --observable V, each candidate (--to, default every partner) is asked
    by private set intersection whether it holds V; only the holders receive the question,
    each its own copy. See docs/rfi.md for what each side learns."""
    from detente.usecases import rfi

    if private != (observable is not None):
        raise UsageError("--private and --observable go together",
                         hint='detente rfi ask --private --observable TYPE:VALUE "TEXT"')
    node = open_node(home)
    if private:
        assert observable is not None
        done = rfi.ask_private(node, text, observable, to=to or (), about=about or (),
                               marking=marking, deadline=deadline, mode=psi_mode)
        if as_json:
            return _dump(done.to_json())
        for p in done.probes:
            state = ("holds it: asked " + str(p.rfi)) if p.holds else \
                "does not hold it: not asked" if p.holds is False else \
                f"undecided, not asked ({p.error})"
            console.print(f"  {p.partner}: {state}", highlight=False)
        if done.holders:
            _release_hint(done.holders)
        else:
            console.print("no partner holds it: nothing asked", highlight=False)
        return None
    if not to:
        raise UsageError("an RFI names the partners it asks (--to), or is --private")
    asked = rfi.ask(node, text, to, about=about or (), marking=marking, deadline=deadline)
    if as_json:
        return _dump({"id": asked.id, "to": asked.to, "deadline": asked.deadline})
    console.print(f"asked {', '.join(asked.to)}: {asked.id}", highlight=False)
    _release_hint(asked.to)


@rfi_app.command("list")
def rfi_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Our RFIs and those partners asked us, with answers and deadlines."""
    node = open_node(home)
    rfis = node.rfis.all()
    if as_json:
        return _dump([r.to_json() for r in rfis])
    if not rfis:
        console.print("no RFIs yet: detente rfi ask TEXT --to PARTNER")
        return
    table = Table("id", "from", "question", "deadline", "answers", "state")
    for r in rfis:
        doc = r.to_json()
        state = "closed" if r.closed else ("OVERDUE" if r.overdue else "open")
        table.add_row(r.note.id, "us" if r.ours else r.note.provenance.origin,
                      str(doc["question"])[:80], r.deadline or "-", str(len(r.answers)), state)
    console.print(table)


@rfi_app.command("show")
def rfi_show(rfi_id: Annotated[str, typer.Argument(help="the RFI's note id")],
             home: HomeOption = None, as_json: JsonOption = False) -> None:
    """One RFI with every answer held here."""
    node = open_node(home)
    r = node.rfis.get(rfi_id)
    doc = r.to_json()
    if as_json:
        return _dump(doc)
    console.print(f"[bold]{r.note.id}[/] from {'us' if r.ours else doc['from']}, asked "
                  f"{doc['asked']}; deadline {r.deadline or 'none'}; "
                  f"{'closed' if r.closed else 'open'}", highlight=False)
    if r.observable:
        console.print(f"  private: asked only of holders of {r.observable}", highlight=False)
    console.print(f"  {doc['question']}", highlight=False, soft_wrap=True)
    for a in doc["answers"]:
        console.print(f"  answer {a['id']} from {a['from']}: {a['text']}", highlight=False,
                      soft_wrap=True)
        for oid in a["offered"]:
            console.print(f"    offered {oid}", highlight=False)


@rfi_app.command("answer")
def rfi_answer(
    rfi_id: Annotated[str, typer.Argument(help="the partner's RFI (note id)")],
    offered: Annotated[list[str] | None, typer.Option(
        "--with", help="an object offered in answer (repeatable)")] = None,
    text: Annotated[str | None, typer.Option("--text", help="a written answer")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a partner's RFI; only that partner receives the answer (under policy)."""
    from detente.usecases import rfi

    node = open_node(home)
    answer_id, asker = rfi.answer(node, rfi_id, offered or [], text)
    if as_json:
        return _dump({"id": answer_id, "rfi": rfi_id, "to": asker, "offered": offered or []})
    console.print(f"answered {rfi_id} for {asker}: {answer_id}", highlight=False)
    _release_hint([asker])


@rfi_app.command("close")
def rfi_close(rfi_id: Annotated[str, typer.Argument(help="our RFI (note id)")],
              home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Close one of our RFIs (a new version, released to the partners asked)."""
    from detente.usecases import rfi

    rfi.close(open_node(home), rfi_id)
    if as_json:
        return _dump({"id": rfi_id, "closed": True})
    console.print(f"closed {rfi_id}", highlight=False)


# -- credit ----------------------------------------------------------------------------------
def credit(
    partner: Annotated[str | None, typer.Option("--partner", help="one partner")] = None,
    proofs: Annotated[bool, typer.Option(
        "--proofs/--no-proofs", help="find the ledger entry proving each item")] = True,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """What each partner gave us, each item with the ledger entry that proves it.

    First reports, independent corroborations, confirmations, answers to our RFIs and
    proven priority, per partner."""
    from detente.usecases.credit import credit_report

    node = open_node(home)
    lines = credit_report(node, partner, proofs=proofs)
    if as_json:
        return _dump([line.to_json() for line in lines])
    table = Table("partner", "first reports", "corroborated", "confirmed", "RFI answers",
                  "proven priority", "credit")
    for line in lines:
        table.add_row(line.partner, str(line.first_reports), str(line.corroborated),
                      str(line.confirmed), str(line.rfi_answers), str(line.proven_priority),
                      f"{line.value:.1f}")
    console.print(table)
    console.print("credit: the importance of first reports later corroborated by an "
                  "independent source or confirmed here", highlight=False)
    for line in lines:
        for what, oid, index in line.proofs[:20]:
            console.print(f"  {line.partner}: {what} {oid} — ledger leaf {index}",
                          highlight=False)
        if len(line.proofs) > 20:
            console.print(f"  {line.partner}: … {len(line.proofs) - 20} more (--json lists "
                          "all)", highlight=False)
