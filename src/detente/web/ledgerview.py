"""The ledger page: this log's checkpoints and their cosignatures, and each partner's log
as this node's witness has seen it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson
from nacl.signing import VerifyKey

from detente.federation.witnessing.cosignatures import CosignatureBook
from detente.ledger import Checkpoint, Witness, verify_consistency, verify_inclusion
from detente.ledger.errors import LedgerError
from detente.node import Node
from detente.partners import Partner
from detente.store.engine import writer
from detente.web import data
from detente.web.facts import fmt_time, ledger_tail, names_of

__all__ = ["CheckpointRow", "EntryRow", "PartnerLog", "entry_page", "entry_rows", "ledger_page"]


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    size: int
    root: str
    note: str
    signers: tuple[str, ...]
    cosigners: tuple[str, ...]
    unknown: tuple[str, ...]
    problem: str | None


@dataclass(frozen=True, slots=True)
class PartnerLog:
    partner: str
    origin: str
    status: str
    ok: bool | None
    size: int | None
    root: str | None


@dataclass(frozen=True, slots=True)
class EntryRow:
    index: int
    time: str
    kind: str
    partner: str
    object_id: str | None
    object_name: str | None
    #: the detail in words (a JSON detail summarised by its short fields)
    summary: str
    #: the whole detail when it is structured (shown folded), else None
    full: str | None


def _summary(detail: str) -> tuple[str, str | None]:
    """A structured (JSON) detail as ``key value`` pairs of its short scalar fields, the
    whole of it kept for a folded view; plain text as it is."""
    text = detail.strip()
    if not text.startswith("{"):
        return detail, None
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return detail, None
    if not isinstance(doc, dict):
        return detail, None
    parts = [f"{k.replace('_', ' ')} {v}" for k, v in doc.items()
             if isinstance(v, str | int | float) and not isinstance(v, bool)
             and len(str(v)) <= 40 and k not in ("at", "session_id")]
    return ", ".join(parts[:8]) or "structured detail", orjson.dumps(
        doc, option=orjson.OPT_INDENT_2).decode()


def entry_rows(node: Node, limit: int = 25) -> list[EntryRow]:
    """The latest entries, newest first, with object names and readable times."""
    tail = ledger_tail(node, limit)
    names = names_of(node, (e.object_id for _, e in tail))
    out = []
    for i, e in tail:
        summary, full = _summary(e.detail or "")
        out.append(EntryRow(i, fmt_time(e.time), e.kind, e.partner or "", e.object_id,
                            names.get(e.object_id) if e.object_id else None, summary, full))
    return out


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def origin_of(partner: Partner) -> str:
    """The log origin a partner node uses (``detente/<name>``, as :class:`Node` does)."""
    return f"detente/{partner.name}"


def _witness_keys(partners: list[Partner]) -> dict[str, VerifyKey]:
    keys = {}
    for p in partners:
        key = VerifyKey(p.public_key)
        keys[p.name] = key
        keys[origin_of(p)] = key
    return keys


def _checkpoint_row(node: Node, note: str, witnesses: dict[str, VerifyKey],
                    book: CosignatureBook) -> CheckpointRow:
    """One signed checkpoint with the cosignatures partners handed back for its tree
    (kept apart from the note, in the witnessing book), each verified again here."""
    own = {node.ledger.key_name: node.verify_key}
    try:
        cp = book.attach(Checkpoint.from_note(note, own))
        note = cp.to_note()
        signers = tuple(cp.verify(own))
        cosigners = tuple(c.name for c in cp.cosignatures(witnesses))
    except LedgerError as exc:
        return CheckpointRow(0, "", note, (), (), (), f"does not verify: {exc.message}")
    known = {*signers, *cosigners}
    unknown = tuple(s.name for s in cp.signatures if s.name not in known)
    return CheckpointRow(cp.size, _b64(cp.root), note, signers, cosigners, unknown, None)


def head_status(node: Node) -> tuple[bool | None, str]:
    """Is the current head a consistent extension of the latest signed checkpoint?"""
    ledger = node.ledger
    cp = ledger.latest_checkpoint()
    if cp is None:
        return None, "No checkpoint signed yet: sign one below so partners can witness it."
    size = ledger.size()
    try:
        proof = ledger.consistency_proof(cp.size, size) if cp.size < size else []
        verify_consistency(cp.size, size, cp.root, ledger.root(size), proof)
    except LedgerError as exc:
        return False, f"INCONSISTENT with checkpoint {cp.size}: {exc.message}"
    return True, (f"The head (size {size}) extends the latest signed checkpoint (size "
                  f"{cp.size}): consistency proof of {len(proof)} hashes verified.")


def partner_logs(node: Node, partners: list[Partner]) -> list[PartnerLog]:
    if not partners:
        return []
    origins = {origin_of(p): {origin_of(p): VerifyKey(p.public_key)} for p in partners}
    witness = Witness(writer(node.store.engine), node.ledger.key_name, node.signing_key, origins)
    alarmed = {a.origin for a in node.ledger.alarms()}
    out = []
    for p in partners:
        origin = origin_of(p)
        if origin in alarmed:
            out.append(PartnerLog(p.name, origin, "EQUIVOCATION: this log showed two "
                                  "histories that cannot both be true (evidence below)",
                                  False, None, None))
            continue
        try:
            seen = witness.last_seen(origin)
        except LedgerError as exc:
            out.append(PartnerLog(p.name, origin, f"stored checkpoint does not verify: "
                                  f"{exc.message}", False, None, None))
            continue
        if seen is None:
            out.append(PartnerLog(p.name, origin, "never witnessed: no checkpoint of this "
                                  "partner's log received yet (it arrives with sync)",
                                  None, None, None))
        else:
            out.append(PartnerLog(p.name, origin, "consistent: every checkpoint seen so far "
                                  "extends the previous one", True, seen.size, _b64(seen.root)))
    return out


def ledger_page(node: Node) -> dict[str, Any]:
    partners = node.partners.all()
    status = node.ledger.status()
    witnesses = _witness_keys(partners)
    ok, head_text = head_status(node)
    book = CosignatureBook(node.store.engine)
    return {
        "origin": status.origin, "size": status.size, "root": _b64(status.root),
        "head_ok": ok, "head_text": head_text,
        "checkpoints": [_checkpoint_row(node, n, witnesses, book)
                        for n in data.checkpoint_notes(node)],
        "partner_logs": partner_logs(node, partners), "alarms": node.ledger.alarms(),
        "entries": entry_rows(node), "has_partners": bool(partners),
    }


def entry_page(node: Node, index: int) -> dict[str, Any]:
    """One entry as proof: its fields, canonical bytes and leaf hash, and its RFC 9162
    inclusion proof in the latest signed checkpoint, verified here (what a partner checks
    with ``detente log verify`` against the checkpoints it witnessed)."""
    ledger = node.ledger
    entry = ledger.entry(index)
    leaf = ledger.leaf_hash(index)
    cp = ledger.latest_checkpoint()
    proof: list[bytes] = []
    if cp is None or index >= cp.size:
        verdict: tuple[bool | None, str] = (None, "Not yet covered by a signed checkpoint: "
                                            "sign one on the ledger page, then partners can "
                                            "check this entry against it.")
    else:
        proof = ledger.inclusion_proof(index, cp.size)
        try:
            verify_inclusion(leaf, index, cp.size, proof, cp.root)
            verdict = (True, f"Included in the signed checkpoint of size {cp.size}: inclusion "
                       f"proof of {len(proof)} hashes verified against its root.")
        except LedgerError as exc:
            verdict = (False, f"The inclusion proof does not verify: {exc.message}")
    summary, full = _summary(entry.detail or "")
    names = names_of(node, [entry.object_id])
    return {"index": index, "entry": entry, "time": fmt_time(entry.time), "summary": summary,
            "full": full, "object_name": names.get(entry.object_id or ""),
            "canonical": entry.canonical.decode(), "leaf": leaf.hex(),
            "checkpoint_size": cp.size if cp else None, "root": _b64(cp.root) if cp else None,
            "proof": [_b64(p) for p in proof], "ok": verdict[0], "verdict": verdict[1]}
