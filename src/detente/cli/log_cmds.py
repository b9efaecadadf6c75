"""`detente log`: the node's verifiable ledger of releases, receipts and queries; and
`detente claim`: verifiable priority, proved through that ledger."""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from detente.cli.app import HomeOption, console, one_of, open_node
from detente.errors import DetenteError, NotFoundError, UsageError
from detente.ledger import BATCH_KIND, KNOWN_KINDS, verify_release
from detente.release import iter_release_records
from detente.release.proofs import batch_entries, prove_release

log_app = typer.Typer(help="The ledger: a Merkle log with signed checkpoints.",
                      no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(app: typer.Typer) -> None:
    app.add_typer(log_app, name="log")
    app.command("claim")(claim)


def _dump(doc: Any) -> None:
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


@log_app.command("status")
def status(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Size, root, latest signed checkpoint, and equivocation alarms."""
    node = open_node(home)
    ledger = node.ledger
    checkpoint = ledger.checkpoint()
    st = ledger.status()
    alarms = ledger.alarms()
    doc = {
        "origin": st.origin, "size": st.size, "root": base64.b64encode(st.root).decode(),
        "checkpoint": checkpoint.to_note(),
        "alarms": [{"id": a.id, "origin": a.origin, "kind": a.kind, "detail": a.detail}
                   for a in alarms],
    }
    if as_json:
        _dump(doc)
        return
    console.print(f"log {st.origin}: {st.size} entries, root {doc['root']}", highlight=False)
    console.print(checkpoint.to_note(), highlight=False, markup=False)
    if alarms:
        console.print(f"[bold red]{len(alarms)} equivocation alarm(s)[/]: a partner's log "
                      "showed two histories that cannot both be true")
        for a in alarms:
            console.print(f"  #{a.id} {a.origin}: {a.kind} — {a.detail}", highlight=False)
        console.print("export one with 'detente log evidence N' (checkable by anyone "
                      "holding that partner's key: 'detente log check-evidence')")
    else:
        console.print("no equivocation alarms")


@log_app.command("show")
def show(
    home: HomeOption = None,
    partner: Annotated[str | None, typer.Option("--partner")] = None,
    kind: Annotated[str | None, typer.Option(
        "--kind", help=f"one of {', '.join(sorted(KNOWN_KINDS))}",
        callback=one_of(KNOWN_KINDS))] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The latest entries, newest last (``--kind release``: the releases in batches too)."""
    node = open_node(home)
    ledger = node.ledger
    size = ledger.size()
    found: list[tuple[int, Any]] = []
    end = size
    while end > 0 and len(found) < limit:
        start = max(0, end - 1000)
        for i, e in reversed(ledger.entries(start, end)):
            if partner is not None and e.partner != partner:
                continue
            # a release batch stands for its releases: --kind release lists them
            shown = _releases_of(node, i) if kind == "release" and e.kind == BATCH_KIND \
                else [e] if kind is None or e.kind == kind else []
            for one in reversed(shown):
                found.append((i, one))
                if len(found) >= limit:
                    break
            if len(found) >= limit:
                break
        end = start
    found.reverse()
    if as_json:
        _dump([{"index": i, **e.to_dict()} for i, e in found])
        return
    if not found:
        console.print("no matching entries")
        return
    table = Table("#", "time", "kind", "partner", "object", "detail")
    for i, e in found:
        table.add_row(str(i), e.time, e.kind, e.partner or "", e.object_id or "",
                      e.detail or "")
    console.print(table)


def _releases_of(node: Any, index: int) -> list[Any]:
    """The release entries under the release batch at ``index``."""
    return [e for _seq, e in batch_entries(node.store.engine, node.ledger, index)[1]]


@log_app.command("refused")
def refused(
    home: HomeOption = None,
    partner: Annotated[str | None, typer.Option("--partner")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Pushes refused for objects their sender may not see (the sender was answered as
    for an unknown id; this is the operator's record), newest first."""
    from detente.federation.exchange.intake import refused_writes
    from detente.stix.timestamps import format_micros

    rows = refused_writes(open_node(home), partner, limit)
    if as_json:
        _dump([{"partner": r.partner, "object": r.object_id, "version": r.version,
                "reason": r.reason, "at": format_micros(r.at)} for r in rows])
        return
    if not rows:
        console.print("no refused writes")
        return
    table = Table("time", "partner", "object", "version", "reason")
    for r in rows:
        table.add_row(format_micros(r.at), r.partner, r.object_id, r.version, r.reason)
    console.print(table)


@log_app.command("prove")
def prove(
    object_id: Annotated[str, typer.Option("--object", help="the released object's id")],
    partner: Annotated[str, typer.Option("--partner")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Inclusion proof that a release to a partner is in the log (checked before printing).

    Two levels: the release entry is in its release batch, the batch entry in the log."""
    node = open_node(home)
    ledger = node.ledger
    checkpoint = ledger.checkpoint()
    size = checkpoint.size
    proofs: list[dict[str, Any]] = []
    for r in iter_release_records(node.store.engine, partner=partner, object_id=object_id,
                                  derive=False):
        if r.ledger_index is None or r.ledger_index >= size:
            continue
        proof = prove_release(node.store.engine, ledger, r.released_at, r.ledger_index, size)
        verify_release(proof, checkpoint.root)
        # "index", "leaf_hash" and "proof": the log leaf (the batch entry) and its path;
        # "release", "position" and "batch_proof": the release entry in that batch
        proofs.append({**proof.to_json(), "index": r.ledger_index,
                       "entry": proof.release.to_dict(),
                       "leaf_hash": proof.batch.leaf_hash.hex()})
    if not proofs:
        raise NotFoundError(f"no release of {object_id} to {partner} in this log")
    if as_json:
        _dump({"checkpoint": checkpoint.to_note(), "tree_size": size, "releases": proofs})
        return
    for p in proofs:
        console.print(f"release of {object_id} to {partner} ({p['entry']['time']}): "
                      f"release {p['position']} of batch #{p['index']}, included "
                      f"({len(p['batch_proof'])} + {len(p['proof'])} proof hashes)",
                      highlight=False)
    console.print(checkpoint.to_note(), highlight=False, markup=False)


@log_app.command("evidence")
def evidence(
    alarm: Annotated[int, typer.Argument(help="the alarm's number (detente log status --json)")],
    home: HomeOption = None,
    output: Annotated[str | None, typer.Option(
        "--output", help="write the evidence file here (default: standard output)")] = None,
) -> None:
    """Export one equivocation alarm as an evidence file (detente-evidence/v1) that anyone
    holding the accused partner's public key can check (detente log check-evidence)."""
    node = open_node(home)
    found = [a for a in node.ledger.alarms() if a.id == alarm]
    if not found:
        raise NotFoundError(f"no equivocation alarm {alarm}",
                            hint="'detente log status --json' lists the alarms")
    data = found[0].evidence().to_json() + b"\n"
    if output is None:
        sys.stdout.write(data.decode())
        return
    with open(output, "wb") as f:
        f.write(data)
    console.print(f"evidence of alarm {alarm} written to {output}", highlight=False)


@log_app.command("check-evidence")
def check_evidence_cmd(
    file: Annotated[str, typer.Argument(help="an evidence file (detente-evidence/v1)")],
    key: Annotated[str, typer.Option(
        "--key", help="the accused partner's public key: base64 (as 'detente partner show' "
                      "prints it) or a C2SP verifier key")],
    as_json: JsonOption = False,
) -> None:
    """Check equivocation evidence with nothing but the accused partner's public key: exit 0
    when it proves the partner showed two histories that cannot both be true, 1 when not."""
    from detente.federation.witnessing.evidence import check_evidence, read_key
    from detente.ledger import Evidence

    try:
        with open(file, "rb") as f:
            data = f.read(1 << 21)
    except OSError as exc:
        raise NotFoundError(f"cannot read {file}: {exc.strerror}") from None
    name, verify_key = read_key(key)
    ev = Evidence.from_json(data)
    verdict = check_evidence(ev, verify_key, name)
    if as_json:
        _dump({"holds": verdict.holds, "origin": ev.origin, "kind": ev.kind,
               "reason": verdict.reason})
    elif verdict.holds:
        console.print(f"[bold red]EVIDENCE HOLDS[/] ({ev.kind}, {ev.origin}): ", end="")
        console.print(verdict.reason, highlight=False, markup=False)
    else:
        console.print(f"[bold]evidence does NOT hold[/] ({ev.kind}, {ev.origin}): ", end="")
        console.print(verdict.reason, highlight=False, markup=False)
    if not verdict.holds:
        raise typer.Exit(1)


@log_app.command("verify")
def verify(
    home: HomeOption = None,
    partner: Annotated[str | None, typer.Option(
        "--partner", help="verify this partner's log (default: every partner)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Check partners' logs: consistency with what we witnessed, and every release we
    received from them included, with the view hash of the bytes we hold."""
    from detente.federation.http.client import open_partner_client
    from detente.federation.witnessing.audit import LogVerification, verify_partner_log

    node = open_node(home)
    names = [partner] if partner else [p.name for p in node.partners.all()]
    if partner:
        node.partners.get(partner)
    results: list[LogVerification] = []
    for name in names:
        try:
            with open_partner_client(node, name) as client:
                results.append(verify_partner_log(node, name, client))
        except DetenteError as exc:
            failed = LogVerification(name, f"detente/{name}")
            failed.problems.append(str(exc))
            results.append(failed)
    if as_json:
        _dump([r.to_json() for r in results])
    else:
        for r in results:
            _print_verification(r)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _print_verification(r: Any) -> None:
    mark = "[green]ok[/]" if r.ok else "[bold red]FAILED[/]"
    console.print(f"{r.partner} ({r.origin}): {mark}", highlight=False)
    if r.size:
        seen = "first checkpoint seen of this log" if r.witnessed_size is None else (
            f"consistent with the largest seen (size {r.witnessed_size})" if r.consistent
            else f"NOT consistent with the largest seen (size {r.witnessed_size})")
        console.print(f"  checkpoint size {r.size}, {seen}; root "
                      f"{'recomputed' if r.root_matches else 'DOES NOT MATCH'}; cosigned by "
                      f"{', '.join(r.cosigned_by) or 'no known witness'}", highlight=False)
        console.print(f"  {r.releases_included} releases to us included; {r.matched} of "
                      f"{r.received} received versions match their view hash", highlight=False)
    for label in r.mismatched:
        console.print(f"  mismatch: {label}", highlight=False)
    for label in r.unaccounted:
        console.print(f"  no release entry: {label}", highlight=False)
    for problem in r.problems:
        console.print(f"  problem: {problem}", highlight=False, markup=False)


# -- verifiable priority: `detente claim` -----------------------------------------------
CLAIM_USAGE = "detente claim ID | detente claim reveal ID --to P [--to Q] | detente claim list"


def claim(
    words: Annotated[list[str], typer.Argument(
        metavar="ID | reveal ID | list",
        help="ID: commit to that object now (nothing is released); 'reveal ID --to P': "
             "send the claim and its content to P, whose node verifies it; 'list': our "
             "claims and the partners' claims verified here")],
    to: Annotated[list[str] | None, typer.Option(
        "--to", help="reveal to this partner (repeatable)")] = None,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Claim priority on an object without releasing it, and prove it to partners later.

    The ledger gets a salted commitment to the object's content, nothing else; a reveal
    sends the content with the opening, and the partner's node checks that the commitment
    was in a tree of our log its own witness checked before it reported the same content."""
    if words == ["list"]:
        return _claim_list(home, as_json)
    if len(words) == 2 and words[0] == "reveal":
        if not to:
            raise UsageError("claim reveal needs --to PARTNER", hint=CLAIM_USAGE)
        return _claim_reveal(words[1], to, home, as_json)
    if len(words) != 1 or words[0] in ("reveal", "list") or "--" not in words[0]:
        raise UsageError(f"not a claim command: {' '.join(words)}", hint=CLAIM_USAGE)
    if to:
        raise UsageError("--to goes with 'claim reveal ID'", hint=CLAIM_USAGE)
    node = open_node(home)
    stored = node.store.get(words[0])
    if stored is None:
        raise NotFoundError(f"no object {words[0]} in this node")
    record, new = node.claims.claim(stored.id, stored.version, stored.body)
    if as_json:
        return _dump({**record.to_json(), "new": new})
    what = "claimed" if new else "already claimed"
    console.print(f"{what} {record.object_id} (version {record.version}) at ledger leaf "
                  f"{record.ledger_index}; commitment {record.commitment.hex()}",
                  highlight=False, soft_wrap=True)
    console.print("nothing was released; 'detente claim reveal ID --to P' proves it later",
                  highlight=False)


def _claim_reveal(object_id: str, partners: list[str], home: Any, as_json: bool) -> None:
    from detente.federation.exchange.claims import reveal_claim
    from detente.federation.http.client import open_partner_client

    node = open_node(home)
    node.claims.require(object_id)
    for p in partners:
        node.partners.get(p)
    results: list[dict[str, Any]] = []
    for p in partners:
        try:
            with open_partner_client(node, p) as client:
                results.append({"partner": p, **reveal_claim(node, object_id, p, client)})
        except DetenteError as exc:
            results.append({"partner": p, "certified": False, "error": str(exc)})
    if as_json:
        _dump(results)
    else:
        for r in results:
            if r.get("certified"):
                console.print(f"{r['partner']}: [green]certified[/] — leaf {r['claim_index']} "
                              f"was in our log by {r['witnessed_at']} (tree size "
                              f"{r['witnessed_size']}, as {r['partner']} witnessed it)",
                              highlight=False, soft_wrap=True)
            else:
                console.print(f"{r['partner']}: [bold red]not certified[/] — "
                              f"{r.get('error') or r.get('reason')}", highlight=False,
                              soft_wrap=True)
    if not all(r.get("certified") for r in results):
        raise typer.Exit(1)


def _claim_list(home: Any, as_json: bool) -> None:
    node = open_node(home)
    ours = node.claims.all()
    theirs = node.claims.verifications()
    if as_json:
        return _dump({"claims": [c.to_json() for c in ours],
                      "verified": [v.to_json() for v in theirs]})
    if not ours and not theirs:
        console.print("no claims yet: 'detente claim ID' commits to an object without "
                      "releasing it")
        return
    for c in ours:
        when = datetime.fromtimestamp(c.claimed_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        console.print(f"ours  {c.object_id}  claimed {when}  leaf {c.ledger_index}",
                      highlight=False, soft_wrap=True)
    for v in theirs:
        doc = v.to_json()
        order = "before our own first report" if v.before_ours and v.own_first_at else (
            "we never reported it" if v.own_first_at is None else "AFTER our own report")
        console.print(f"{v.partner:<5} {v.object_id}  in their log by {doc['witnessed_at']}"
                      f" ({order})", highlight=False, soft_wrap=True)
