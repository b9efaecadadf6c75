"""Page handlers: each takes a :class:`~detente.web.context.Ctx`, returns a response."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse, RedirectResponse, Response

from detente.errors import DetenteError, NotFoundError, ValidationError
from detente.partners import TIER_NAMES, Partner
from detente.policy.releasability import RELEASABILITY_EXTENSION_ID
from detente.release import ReleaseRecord
from detente.rfi import Rfi
from detente.trust import PartnerTrust
from detente.usecases.rfi import PRIVATE_MODES
from detente.web import charts, data, deconf, facts
from detente.web.context import Ctx, Upload
from detente.web.ledgerview import entry_page, ledger_page
from detente.web.objects import object_page

MAX_ARTIFACT = 32 * 1024 * 1024
#: the sighting form's marking choices (value, label), most restrictive default first
TLP_LEVELS = (("amber", "TLP:AMBER"), ("amber+strict", "TLP:AMBER+STRICT"),
              ("red", "TLP:RED"), ("green", "TLP:GREEN"), ("clear", "TLP:CLEAR"))
TRACE_FORMATS = ("", "stix", "text", "csv")


@dataclass(frozen=True, slots=True)
class PartnerRow:
    partner: Partner
    tier: int
    trust: PartnerTrust
    flow: facts.PartnerTraffic
    figures: data.PartnerFigures | None = None


#: what the reliability trend's times are (one clock for the whole chart)
TRUST_CLOCK = ("the earned-trust clock: the node's clock for trust, which a simulation "
               "such as the demo runs ahead of the wall clock")


def _trend_chart(name: str, trend: list[data.TrendPoint]) -> Any:
    """Reliability over time, every point on the earned-trust clock (the times the trust
    engine weighed the evidence), x proportional to that time."""
    labels = [p.time.strftime("%m-%d") for p in trend]
    ahead = (trend[-1].time - datetime.now(UTC)).total_seconds() / 86_400
    note = (f" The trust clock is {ahead:.0f} days ahead of the wall clock (simulated time)."
            if ahead >= 1 else "")
    return charts.line_chart(
        f"Reliability of {name} over time",
        f"{len(trend)} points from {trend[0].time:%Y-%m-%d} to {trend[-1].time:%Y-%m-%d} on "
        f"{TRUST_CLOCK}; latest {trend[-1].value:.2f} on a scale of 0 to 1.{note}",
        labels, [p.value for p in trend], times=[p.time.timestamp() for p in trend])


def _trends(ctx: Ctx, names: list[str]) -> tuple[list[tuple[str, Any, list[Any]]],
                                                 data.Missing | None]:
    out, missing = [], None
    for name in names:
        trend = data.reliability_trend(ctx.node, name)
        if isinstance(trend, data.Missing):
            missing = trend
        elif trend:
            out.append((name, _trend_chart(name, trend), trend))
    return out, missing


def _reliability_now(rows: list[PartnerRow]) -> Any:
    graded = rows
    if not graded:
        return None
    rel = [r.trust.reliability for r in graded]
    names = [r.partner.name for r in graded]
    desc = "; ".join(f"{n}: {x.mean:.2f} (90% between {x.low:.2f} and {x.high:.2f})"
                     for n, x in zip(names, rel, strict=True))
    return charts.interval_chart("Reliability of each partner now", desc, names,
                                 [x.mean for x in rel], [x.low for x in rel],
                                 [x.high for x in rel])


def dashboard(ctx: Ctx) -> Response:
    node = ctx.node
    partners = node.partners.all()
    flow = facts.traffic(node)
    rows = []
    for p in partners:
        tier, trust = node.partners.tier_of(p), data.partner_trust(node, p.name)
        rows.append(PartnerRow(p, tier, trust, flow[p.name],
                               data.partner_figures(p, tier, trust)))
    trends, trend_missing = _trends(ctx, [p.name for p in partners])
    tail = facts.ledger_tail(node)
    inbox = facts.received(node, tuple(p.name for p in partners))
    order = data.credibility_order(node, [o.id for o in inbox])
    inbox.sort(key=lambda o: order.get(o.id, 7))
    releases = facts.recent_releases(tail, node)
    return ctx.render(
        "dashboard.html", rows=rows, trust_missing=None, trends=trends, trust_clock=TRUST_CLOCK,
        trend_missing=trend_missing, reliability_now=_reliability_now(rows),
        releases=releases, names=facts.names_of(node, (r.object_id for r in releases)),
        inbox=[(o, facts.display_name(o), order.get(o.id)) for o in inbox],
        order_missing=None,
        alarms=facts.alarms(node, tail), tier_names=TIER_NAMES, grade_names=data.GRADE_NAMES)


def object_detail(ctx: Ctx) -> Response:
    page = object_page(ctx.node, ctx.request.path_params["object_id"])
    flash = ctx.state.flashes.pop(ctx.session.csrf) if ctx.session else None
    return ctx.render("object.html", flash=flash, tlp_levels=TLP_LEVELS, **page)


def _sharing_chart(name: str, flow: facts.PartnerTraffic) -> tuple[Any, list[Any]]:
    days = facts.day_labels(14)
    sent = [flow.sent_by_day[d] for d in days]
    got = [flow.received_by_day[d] for d in days]
    chart = charts.bar_chart(
        f"Sharing with {name}, last 14 days",
        f"Object versions released to {name}: {sum(sent)}; received from {name}: "
        f"{sum(got)}, per UTC day of the wall clock (when they were released and "
        "received).", [d.strftime("%m-%d") for d in days],
        [charts.Series(f"released to {name}", sent), charts.Series(f"received from {name}",
                                                                     got)])
    table = [(d.isoformat(), s, g) for d, s, g in zip(days, sent, got, strict=True) if s or g]
    return chart, table


def _last_sent(ctx: Ctx, name: str, limit: int = 20) -> list[ReleaseRecord]:
    last: deque[ReleaseRecord] = deque(maxlen=limit)
    last.extend(facts.release_records(ctx.node, name))
    return list(reversed(last))


def partner(ctx: Ctx) -> Response:
    node = ctx.node
    p = node.partners.get(ctx.request.path_params["name"])
    flow = facts.traffic(node, p.name)[p.name]
    chart, volume = _sharing_chart(p.name, flow)
    trends, trend_missing = _trends(ctx, [p.name])
    trust = data.partner_trust(node, p.name)
    history = data.evidence_timeline(node, p.name)
    tier = node.partners.tier_of(p)
    sent = _last_sent(ctx, p.name)
    reviews = data.reviews(node, p.name)
    names = facts.names_of(node, [*(e.object_id for e in history), *(r.object_id for r in sent),
                                  *(r.object_id for r in reviews)])
    return ctx.render(
        "partner.html", p=p, tier=tier, tier_names=TIER_NAMES, names=names,
        figures=data.partner_figures(p, tier, trust),
        trust=trust, grade_names=data.GRADE_NAMES, reviews=reviews,
        trends=trends, trend_missing=trend_missing, trust_clock=TRUST_CLOCK,
        reliability_now=_reliability_now([PartnerRow(p, 0, trust, flow)]),
        evidence=history, echoes=data.echoes(history),
        flow=flow, chart=chart, volume=volume, sent=sent,
        received=[(o, facts.display_name(o)) for o in facts.received(node, (p.name,), 20)],
        fmt=facts.fmt_micros)


def deconfliction(ctx: Ctx) -> Response:
    partners = ctx.node.partners.all()
    values = {"partner": "", "mode": "intersection", "kind": "ipv4-addr", "items": ""}
    result: Any = None
    error: str | None = None
    encoded = 0
    coalition: Any = None
    chosen: list[str] = []
    if ctx.form is not None and ctx.text("form") == "coalition":
        values.update({"kind": ctx.text("kind"), "items": ctx.text("items"),
                       "threshold": ctx.text("threshold"), "pointer": ctx.text("pointer"),
                       "reconstructor": ctx.text("reconstructor")})
        chosen = [p.name for p in partners if ctx.text(f"with-{p.name}") == "on"]
        try:
            coalition = deconf.run_coalition(ctx.node, chosen, values["threshold"],
                                             values["kind"], values["items"],
                                             values["pointer"] == "on",
                                             values["reconstructor"] or None)
        except DetenteError as exc:
            error = deconf.refusal_text(exc) + (f" — {exc.hint}" if exc.hint else "")
    elif ctx.form is not None:
        values.update({k: ctx.text(k) for k in values})
        try:
            result, encoded = deconf.run(ctx.node, values["partner"], values["mode"],
                                         values["kind"], values["items"])
        except DetenteError as exc:
            error = deconf.refusal_text(exc) + (f" — {exc.hint}" if exc.hint else "")
    return ctx.render("deconfliction.html", partners=partners, values=values, modes=deconf.MODES,
                      kinds=deconf.ITEM_KINDS, result=result, error=error, encoded=encoded,
                      budgets=deconf.budget_rows(ctx.node), coalition=coalition,
                      chosen=chosen, status=400 if error is not None else 200)


def trace_form(ctx: Ctx, error: Exception | None = None, status: int = 200) -> Response:
    return ctx.render("trace.html", error=error, formats=TRACE_FORMATS, status=status)


def _artifact(ctx: Ctx) -> tuple[str, bytes]:
    upload = ctx.form.get("artifact") if ctx.form else None
    if isinstance(upload, Upload) and upload.data:
        return upload.filename or "upload", upload.data
    pasted = ctx.text("pasted")
    if pasted.strip():
        return "pasted text", pasted.encode()
    raise ValidationError("no artifact given", hint="choose a file or paste the text")


def trace_submit(ctx: Ctx) -> Response:
    fmt = ctx.text("format")
    try:
        if fmt not in TRACE_FORMATS:
            raise ValidationError(f"unknown format {fmt!r}")
        name, blob = _artifact(ctx)
        if len(blob) > MAX_ARTIFACT:
            raise ValidationError(f"artifact larger than {MAX_ARTIFACT // 2**20} MiB")
    except ValidationError as exc:
        return trace_form(ctx, exc, 400)
    job = ctx.state.traces.submit(ctx.operator, name, blob, fmt or None)
    return RedirectResponse(f"/trace/jobs/{job.id}", status_code=303)


def _job(ctx: Ctx) -> Any:
    job = ctx.state.traces.get(ctx.request.path_params["job_id"], ctx.operator)
    if job is None:
        raise NotFoundError("no such trace job (jobs are kept in memory, the last 50)",
                            hint="start a new trace")
    return job


def trace_job(ctx: Ctx) -> Response:
    job = _job(ctx)
    # one consistent snapshot: the worker sets the outcome before the state, so reading the
    # state first means "done" always comes with its outcome (the worker may finish while
    # this page is being built)
    state = job.state
    outcome = job.outcome
    if state == "done" and outcome is None:  # cannot happen in that order; fail closed
        state = "running"
    if state != "done":
        outcome = None
    evidence = outcome.report.evidence if outcome else []
    names = facts.names_of(ctx.node, (e.stix_id for e in evidence))
    return ctx.render("trace_job.html", job=job, state=state, outcome=outcome, names=names,
                      proofs=list(zip(outcome.proofs, job.proof_checks, strict=False))
                      if outcome else [])


def trace_status(ctx: Ctx) -> Response:
    return JSONResponse(_job(ctx).status())


def ledger(ctx: Ctx) -> Response:
    signed = ctx.request.query_params.get("signed", "")
    return ctx.render("ledger.html", signed=signed if signed.isdigit() else None,
                      **ledger_page(ctx.node))


def ledger_checkpoint(ctx: Ctx) -> Response:
    cp = ctx.node.ledger.checkpoint()
    return RedirectResponse(f"/ledger?signed={cp.size}", status_code=303)


# -- requests for information and credit -------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RfiRow:
    rfi: Rfi
    #: partners asked (ours) or the asker (theirs)
    who: list[str]
    #: answer id -> the ledger entry crediting it (answers to our RFIs)
    credits: dict[str, int]


def _asked(node: Any, rfi: Rfi, names: dict[str, str]) -> list[str]:
    """Whom our RFI was asked of, from its releasability marking (identities as names)."""
    out: list[str] = []
    for ref in rfi.body.get("object_marking_refs") or []:
        md = node.store.get(ref) if ref.startswith("marking-definition--") else None
        ext = (md.body.get("extensions") or {}).get(RELEASABILITY_EXTENSION_ID) if md else None
        if isinstance(ext, dict):
            out += [names.get(str(x), str(x)) for x in ext.get("releasable_to") or []]
    return out


def _rfi_order(row: RfiRow) -> tuple[bool, str, str]:
    """Open first, soonest deadline first (none last), then the newest."""
    return (row.rfi.closed, row.rfi.deadline or "9999", str(row.rfi.body.get("created")))


def rfis(ctx: Ctx) -> Response:
    """GET /rfi: the RFI inbox — partners' questions to us, ours to them — and the forms."""
    node = ctx.node
    partners = node.partners.all()
    by_identity = {p.identity_id: p.name for p in partners if p.identity_id}
    credited = {a: i for a, _r, _p, i in node.rfis.credited()}
    rows = []
    for r in node.rfis.all():
        who = _asked(node, r, by_identity) if r.ours else [r.note.provenance.origin]
        rows.append(RfiRow(r, who, {a.id: credited[a.id] for a in r.answers
                                    if a.id in credited}))
    rows.sort(key=_rfi_order)
    refs = [ref for row in rows for ref in row.rfi.body.get("object_refs") or []]
    refs += [ref for row in rows for a in row.rfi.answers
             for ref in a.body.get("object_refs") or []]
    flash = ctx.state.flashes.pop(ctx.session.csrf) if ctx.session else None
    return ctx.render("rfi.html", incoming=[r for r in rows if not r.rfi.ours],
                      outgoing=[r for r in rows if r.rfi.ours], partners=partners,
                      names=facts.names_of(node, refs), tlp_levels=TLP_LEVELS,
                      psi_modes=PRIVATE_MODES, flash=flash)


def credit(ctx: Ctx) -> Response:
    """GET /credit: ``detente credit`` as a page, each item linked to its ledger entry."""
    from detente.usecases.credit import credit_report

    lines = credit_report(ctx.node)
    names = facts.names_of(ctx.node, (oid for line in lines for _w, oid, _i in line.proofs))
    return ctx.render("credit.html", lines=lines, names=names)


def ledger_entry(ctx: Ctx) -> Response:
    """GET /ledger/entries/{index}: one entry, with its inclusion proof in the latest
    signed checkpoint, verified here."""
    text = ctx.request.path_params["index"]
    size = ctx.node.ledger.size()
    if not text.isdigit() or int(text) >= size:
        raise NotFoundError(f"no ledger entry {text} (the ledger holds {size})",
                            hint="entries are numbered from 0")
    return ctx.render("ledger_entry.html", **entry_page(ctx.node, int(text)))
