"""The Objects page: every object's latest version, searched, filtered and paged.

Search and listing are the store's (:mod:`detente.store.search`); this module reads the
request's filters.  The credibility filter is applied to the store's answer a chunk of
candidates at a time (:data:`CHUNK`), each graded by trust
(:meth:`~detente.trust.TrustEngine.credibility_of`), until the page is full: memory stays
that of one chunk on a hub of a million objects, and at most :data:`SCAN` candidates are
graded per request, the page saying so when the scan stopped there.  Operator side only:
no partner route reaches it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from detente.errors import ValidationError
from detente.store.search import Find, Found, Hit
from detente.web.context import Ctx

__all__ = ["PAGE_SIZE", "objects_list"]

PAGE_SIZE = 50
#: candidates graded at once under the credibility filter, and at most per request
CHUNK = 1000
SCAN = 100_000
MARKINGS = (("clear", "TLP:CLEAR"), ("green", "TLP:GREEN"), ("amber", "TLP:AMBER"),
            ("amber+strict", "TLP:AMBER+STRICT"), ("red", "TLP:RED"))
CREDIBILITY = (("1", "1 confirmed"), ("2", "2 probably true"), ("3", "3 possibly true"),
               ("4", "4 doubtful"), ("5", "5 improbable"), ("6", "6 cannot be judged"))
TYPES = ("attack-pattern", "campaign", "course-of-action", "grouping", "identity", "indicator",
         "infrastructure", "intrusion-set", "location", "malware", "malware-analysis", "note",
         "observed-data", "opinion", "report", "threat-actor", "tool", "vulnerability",
         "relationship", "sighting", "marking-definition", "domain-name", "email-addr",
         "file", "ipv4-addr", "ipv6-addr", "url", "x-mitre-tactic", "x-mitre-matrix",
         "x-mitre-data-source", "x-mitre-data-component", "x-mitre-asset")


@dataclass(frozen=True, slots=True)
class Filters:
    q: str
    type: str
    origin: str
    marking: str
    credibility: str
    page: int
    per_page: int = PAGE_SIZE

    def link(self, page: int) -> str:
        params = {k: v for k, v in (("q", self.q), ("type", self.type), ("origin", self.origin),
                                    ("marking", self.marking),
                                    ("credibility", self.credibility)) if v}
        if self.per_page != PAGE_SIZE:
            params["per_page"] = str(self.per_page)
        if page > 1:
            params["page"] = str(page)
        return "/objects" + ("?" + urlencode(params) if params else "")

    @property
    def active(self) -> bool:
        return any((self.type, self.origin, self.marking, self.credibility))


def _filters(ctx: Ctx) -> Filters:
    p = ctx.request.query_params
    raw_page = p.get("page", "1").strip() or "1"
    if not raw_page.isdigit() or int(raw_page) < 1 or int(raw_page) > 100_000:
        raise ValidationError(f"page {raw_page!r} is not a page number",
                              hint="pages are numbered from 1")
    raw_per = p.get("per_page", str(PAGE_SIZE)).strip()
    if not raw_per.isdigit() or not 10 <= int(raw_per) <= 500:
        raise ValidationError(f"per_page {raw_per!r} is not between 10 and 500")
    f = Filters(p.get("q", "").strip()[:500], p.get("type", "").strip(),
                p.get("origin", "").strip(), p.get("marking", "").strip(),
                p.get("credibility", "").strip(), int(raw_page), int(raw_per))
    if f.marking and f.marking not in dict(MARKINGS):
        raise ValidationError(f"unknown marking filter {f.marking!r}",
                              hint="one of " + ", ".join(dict(MARKINGS)))
    if f.credibility and f.credibility not in dict(CREDIBILITY):
        raise ValidationError(f"unknown credibility filter {f.credibility!r}",
                              hint="a credibility from 1 (confirmed) to 6")
    return f


def _find(ctx: Ctx, f: Filters) -> tuple[Found, bool]:
    """One page of objects matching ``f``, and whether the credibility scan stopped at
    :data:`SCAN` candidates before it could tell."""
    base = Find(text=f.q, types=(f.type,) if f.type else (),
                origins=(f.origin,) if f.origin else (),
                markings=(f.marking,) if f.marking else ())
    start = (f.page - 1) * f.per_page
    if not f.credibility:
        return ctx.node.store.find(replace(base, offset=start, limit=f.per_page)), False
    matched: list[Hit] = []
    scanned, more = 0, True
    while more and len(matched) <= start + f.per_page and scanned < SCAN:
        chunk = ctx.node.store.find(replace(base, offset=scanned,
                                            limit=min(CHUNK, SCAN - scanned)))
        levels = ctx.node.trust.credibility_of(h.id for h in chunk.hits)
        matched += [h for h in chunk.hits if str(levels.get(h.id)) == f.credibility]
        scanned += len(chunk.hits)
        more = chunk.more
    full = len(matched) > start + f.per_page
    return Found(matched[start:start + f.per_page], full), \
        not full and more and scanned >= SCAN


def objects_list(ctx: Ctx) -> Response:
    origins = ["local", *sorted(p.name for p in ctx.node.partners.all())]
    values: dict[str, Any] = {"types": TYPES, "origins": origins, "markings": MARKINGS,
                              "credibilities": CREDIBILITY, "hits": [], "error": None,
                              "scan_cut": None}
    try:
        f = _filters(ctx)
    except ValidationError as exc:
        f = Filters("", "", "", "", "", 1)
        return ctx.render("objects.html", status=400, f=f, **{**values, "error": exc})
    values["f"] = f
    try:
        found, cut = _find(ctx, f)
    except ValidationError as exc:
        return ctx.render("objects.html", status=400, **{**values, "error": exc})
    hits: list[Hit] = found.hits
    values.update(hits=hits, more=found.more, scan_cut=SCAN if cut else None,
                  prev_link=f.link(f.page - 1) if f.page > 1 else None,
                  next_link=f.link(f.page + 1) if found.more else None,
                  first=(f.page - 1) * f.per_page + 1)
    return ctx.render("objects.html", **values)
