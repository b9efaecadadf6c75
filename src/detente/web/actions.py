"""Acting on an object from its page: record a sighting, mark it a false positive,
confirm or refute it; and requests for information from the RFI page: ask, answer, close.

Each handler calls the very function its CLI command calls — ``detente evidence
sighting`` (:func:`detente.usecases.sighting.record_sighting`), ``detente evidence
confirm|refute`` (``node.trust.confirm`` / ``node.trust.refute``), ``detente rfi
ask|answer|close`` (:mod:`detente.usecases.rfi`) — behind the UI's
session and CSRF check (:mod:`detente.web.app`).  Every action is logged (logger
``detente.web.actions``, with the operator's name) and lands in the ledger through its
capability (a receipt for the sighting, ``evidence`` entries for the verdicts, whose
reason names the operator; an RFI's notes and releases).  The answer is a redirect back
to the page acted on, which shows the outcome once (a flash kept in memory for that
session).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from detente.errors import DetenteError, ValidationError
from detente.usecases.rfi import PrivateAsked
from detente.web.context import Ctx, Flash

__all__ = ["rfi_answer", "rfi_ask", "rfi_close", "sighting", "verdict"]

log = logging.getLogger("detente.web.actions")


def _back(ctx: Ctx, object_id: str, flash: Flash) -> Response:
    return _to(ctx, f"/objects/{quote(object_id, safe='')}", flash)


def _to(ctx: Ctx, path: str, flash: Flash) -> Response:
    if ctx.session is not None:
        ctx.state.flashes.put(ctx.session.csrf, flash)
    return RedirectResponse(path, status_code=303)


def _tier_news(ctx: Ctx, before: set[int]) -> str:
    changes = [x for x in list(ctx.node.applied_tier_changes) if id(x) not in before]
    return "".join(f" {c.partner}: tier {c.old} → {c.new} ({run.released} newly released, "
                   f"{run.withdrawn} withdrawn)." for c, run in changes)


def _int(ctx: Ctx, name: str, default: int) -> int:
    text = ctx.text(name, 32).strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValidationError(f"{name.replace('_', ' ')} must be a whole number, "
                              f"got {text!r}") from None


def sighting(ctx: Ctx) -> Response:
    """POST /objects/{id}/sighting: ``count``, ``first_seen``, ``last_seen`` (ISO 8601,
    empty = now), ``note``, ``tlp``; ``false_positive=1`` marks it a false positive."""
    from detente.usecases.sighting import parse_when, record_sighting

    object_id = ctx.request.path_params["object_id"]
    false_positive = ctx.text("false_positive", 8) == "1"
    before = {id(x) for x in list(ctx.node.applied_tier_changes)}
    try:
        result = record_sighting(
            ctx.node, object_id, count=_int(ctx, "count", 1),
            first_seen=parse_when(ctx.text("first_seen", 64), field="first seen"),
            last_seen=parse_when(ctx.text("last_seen", 64), field="last seen"),
            false_positive=false_positive, note=ctx.text("note", 4000),
            tlp=ctx.text("tlp", 16) or "amber")
    except DetenteError as exc:
        log.info("operator %s: sighting of %s refused: %s", ctx.operator, object_id,
                 exc.message)
        return _back(ctx, object_id, Flash(False, f"Not recorded: {exc.message}"
                                           + (f" ({exc.hint})" if exc.hint else "")))
    sid = result.sighting["id"]
    what = "false positive" if false_positive else "sighting"
    log.info("operator %s recorded %s %s of %s (count %s)", ctx.operator, what, sid,
             object_id, result.sighting["count"])
    effect = ("refutes every source of its claims" if false_positive
              else "confirms every source of its claims")
    return _back(ctx, object_id, Flash(True, (
        f"Recorded our {what} {sid} (count {result.sighting['count']}): it {effect}."
        + _tier_news(ctx, before))))


def verdict(ctx: Ctx) -> Response:
    """POST /objects/{id}/verdict: ``verdict`` confirm|refute and ``why`` (required)."""
    object_id = ctx.request.path_params["object_id"]
    kind = ctx.text("verdict", 16)
    why = ctx.text("why", 2000).strip()
    before = {id(x) for x in list(ctx.node.applied_tier_changes)}
    try:
        if kind not in ("confirm", "refute"):
            raise ValidationError(f"unknown verdict {kind!r}: confirm or refute")
        if not why:
            raise ValidationError("a reason is required", hint="say why in the reason field")
        judge = ctx.node.trust.refute if kind == "refute" else ctx.node.trust.confirm
        judged = judge(object_id, f"{why} (operator {ctx.operator}, web UI)")
    except DetenteError as exc:
        log.info("operator %s: %s of %s refused: %s", ctx.operator, kind, object_id,
                 exc.message)
        return _back(ctx, object_id, Flash(False, f"Not recorded: {exc.message}"
                                           + (f" ({exc.hint})" if exc.hint else "")))
    done = "refuted" if kind == "refute" else "confirmed"
    log.info("operator %s %s %s: %s (reports judged from %s)", ctx.operator, done,
             object_id, why, ", ".join(judged) or "no partner")
    who = ", ".join(judged) if judged else "no partner (only our own reports)"
    return _back(ctx, object_id, Flash(True, (
        f"{done.capitalize()}; reports judged from: {who}. Recorded in the ledger."
        + _tier_news(ctx, before))))


# -- requests for information ----------------------------------------------------------------

def _lines(ctx: Ctx, name: str) -> list[str]:
    """A field of several values: one per line or comma (and repeated fields, one per
    line)."""
    text = ctx.text(name, 64_000).replace(",", "\n")
    return [v.strip() for v in text.splitlines() if v.strip()]


def _refused(ctx: Ctx, what: str, exc: DetenteError) -> Response:
    log.info("operator %s: %s refused: %s", ctx.operator, what, exc.message)
    return _to(ctx, "/rfi", Flash(False, f"Not done: {exc.message}"
                                  + (f" ({exc.hint})" if exc.hint else "")))


def rfi_ask(ctx: Ctx) -> Response:
    """POST /rfi: ``text``, ``to`` (partner names, repeated or one per line), ``about``
    (STIX ids), ``marking``, ``deadline``; with ``observable`` the RFI is private: asked
    only of the partners among ``to`` (or all) that hold it."""
    from detente.usecases import rfi

    node, to, observable = ctx.node, _lines(ctx, "to"), ctx.text("observable", 2000).strip()
    about, marking = _lines(ctx, "about"), ctx.text("marking", 32) or "amber"
    deadline, text = ctx.text("deadline", 64).strip() or None, ctx.text("text", 9000)
    try:
        if observable:
            done = rfi.ask_private(node, text, observable, to=to, about=about,
                                   marking=marking, deadline=deadline,
                                   mode=ctx.text("psi_mode", 16) or "intersection")
        else:
            if not to:
                raise ValidationError("choose the partners to ask",
                                      hint="or give an observable for a private RFI")
            asked = rfi.ask(node, text, to, about=about, marking=marking,
                            deadline=deadline)
    except DetenteError as exc:
        return _refused(ctx, "RFI", exc)
    if observable:
        log.info("operator %s asked a private RFI of %s (holders of %d candidates)",
                 ctx.operator, ", ".join(done.holders) or "nobody", len(done.probes))
        return _to(ctx, "/rfi", Flash(bool(done.holders), _private_news(done)))
    log.info("operator %s asked %s: %s", ctx.operator, ", ".join(asked.to), asked.id)
    return _to(ctx, "/rfi", Flash(True, f"Asked {', '.join(asked.to)}: {asked.id}. Released "
                                  "to them by the background releaser."))


def _private_news(done: PrivateAsked) -> str:
    holders = done.holders
    undecided = [p.partner for p in done.probes if p.holds is None]
    rest = len(done.probes) - len(holders) - len(undecided)
    first = (f"Asked privately: {', '.join(holders)} "
             f"{'holds' if len(holders) == 1 else 'hold'} it and received the question"
             if holders else "No partner holds it: nothing was asked")
    return (first + f"; {rest} do{'es' if rest == 1 else ''} not hold it"
            + (f"; undecided, so not asked: {', '.join(undecided)}" if undecided else "")
            + ". Each query is in the ledger, without the observable.")


def rfi_answer(ctx: Ctx) -> Response:
    """POST /rfi/{id}/answer: ``with`` (object ids offered) and ``text``."""
    from detente.usecases import rfi

    rfi_id = ctx.request.path_params["rfi_id"]
    try:
        answer_id, asker = rfi.answer(ctx.node, rfi_id, _lines(ctx, "with"),
                                      ctx.text("text", 9000) or None)
    except DetenteError as exc:
        return _refused(ctx, f"answer to {rfi_id}", exc)
    log.info("operator %s answered %s for %s: %s", ctx.operator, rfi_id, asker, answer_id)
    return _to(ctx, "/rfi", Flash(True, f"Answered {rfi_id} for {asker}: {answer_id}. "
                                  f"Only {asker} receives it."))


def rfi_close(ctx: Ctx) -> Response:
    """POST /rfi/{id}/close."""
    from detente.usecases import rfi

    rfi_id = ctx.request.path_params["rfi_id"]
    try:
        rfi.close(ctx.node, rfi_id)
    except DetenteError as exc:
        return _refused(ctx, f"closing {rfi_id}", exc)
    log.info("operator %s closed %s", ctx.operator, rfi_id)
    return _to(ctx, "/rfi", Flash(True, f"Closed {rfi_id}; the partners asked receive the "
                                  "closed version."))
