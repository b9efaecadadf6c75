"""Finding objects: a catalogue of every object's latest version, searchable by text and
by observable value, kept by the store in the transaction that writes the object.

``search_docs`` holds one row per object id — its latest version's ``date_added`` (the
row's key, ``seq``), type, origin, marking, display name — and two texts:

* ``names``: the name, aliases, ATT&CK/CVE ids, and every *observable* — the values in an
  indicator's pattern and an SCO's value, hashes, file name — as exact *term tokens*;
* ``doc``: the description and the pattern's words.

Both are pre-tokenised here (lower-case letter/digit runs, diacritics removed), so the two
databases see the same words: SQLite indexes them with FTS5 (an external-content table on
``search_docs``), PostgreSQL with one GIN index on ``to_tsvector('simple', …)`` of both, the
names weighted ``A``.  A STIX id finds its object directly.

An observable is matched whole, never as a run of words (``10.0.0.1`` must not cost a
read of every document holding a ``0``): it is normalised (IPv6 compressed, defanged
``hxxp``/``[.]`` undone, lower-case) and stored as one token, ``x`` + 16 hex digits of its
BLAKE2b hash.  A domain also yields its parent domains, a URL and an e-mail address their
host, so ``example.net`` finds ``c2.example.net``, ``https://c2.example.net/gate.php`` and
``ops@example.net``.

Results come in a stable order — matches in ``names`` first, then newest first — so
``offset`` pages never repeat or skip a row.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import sqlalchemy as sa

from detente.errors import ValidationError
from detente.stix.vocab import tlp_level

__all__ = ["DOC_FIELDS", "DocFields", "Find", "Found", "Hit", "SearchIndex", "doc_fields",
           "doc_of", "parse_query", "search_docs"]

#: bump when what is indexed changes: open rebuilds the index
INDEX_VERSION = "1"
_META_KEY = "search_index"
_CHUNK = 500
_MAX_DOC = 100_000  # characters of text indexed per object
_TEXT_FIELDS = ("description", "abstract", "content", "explanation", "opinion", "context")
_NAME_FIELDS = ("name", "value", "display_name", "path", "subject", "number")
_LIST_FIELDS = ("aliases", "x_mitre_aliases", "labels", "indicator_types", "malware_types",
                "threat_actor_types", "tool_types", "roles", "goals", "report_types",
                "infrastructure_types")
_TLP_ORDER = ("red", "amber+strict", "amber", "green", "clear")

metadata = sa.MetaData()

search_docs = sa.Table(
    "search_docs",
    metadata,
    # date_added of the object's latest version (unique, so a row is found from either)
    # (on SQLite the rowid itself: INTEGER PRIMARY KEY)
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=False),
    sa.Column("object_id", sa.Text, nullable=False, unique=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("origin", sa.Text, nullable=False),
    # the strictest TLP level, else the first marking id, else ""
    sa.Column("marking", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
    sa.Column("names", sa.Text, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Index("ix_search_docs_type", "type", "seq"),
    sa.Index("ix_search_docs_origin", "origin", "seq"),
    sa.Index("ix_search_docs_marking", "marking", "seq"),
)

_COLS = ("seq", "object_id", "type", "origin", "marking", "name", "revoked", "names", "doc")
_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5("
    "names, doc, content='search_docs', content_rowid='seq', "
    "tokenize='unicode61 remove_diacritics 0')"
)
# one vector per row: the names words weighted A (a names match is a query at weight A)
_PG_TSV = ("(setweight(to_tsvector('simple'::regconfig, {t}names), 'A') || "
           "to_tsvector('simple'::regconfig, {t}doc))")
# stored, so a recheck or a filter reads it instead of re-parsing the text of each row
_PG_GIN = ("ALTER TABLE search_docs ADD COLUMN IF NOT EXISTS tsv tsvector GENERATED ALWAYS AS "
           f"({_PG_TSV.format(t='')}) STORED",
           "CREATE INDEX IF NOT EXISTS ix_search_docs_fts ON search_docs USING gin (tsv)")
#: up to this many matches are ranked exactly in memory; more are read as two streams
_CAP = 2000

# -- what is indexed ------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
# ``'((?:[^'\\]|\\.)*)'`` unrolled (the same matches, without an alternation per character)
_LITERAL = re.compile(r"'([^'\\]*(?:\\.[^'\\]*)*)'")
_IPISH = re.compile(r"[0-9a-f.:/%]{2,64}")
_HEX = re.compile(r"[0-9a-f]{32,128}")
_STIX_ID = re.compile(r"[a-z0-9-]+--[0-9a-f-]{36}")
_DOMAIN = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)+")
#: a dotted-quad IPv4 address as ``ipaddress`` prints it (no leading zeros): kept as is
_PLAIN_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                         r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])", re.ASCII)
#: every byte but an ASCII letter or digit, as a space (see :func:`words`)
_ASCII_SEPARATORS = bytes(c if chr(c).isascii() and chr(c).isalnum() else 32
                          for c in range(256))


def words(text: str) -> list[str]:
    """Lower-case letter/digit runs, diacritics removed (the same on both databases).

    ASCII text (nearly all of it) is split by a translation table over its bytes: every
    ASCII character that is not a letter or digit becomes a space, which is what
    ``[^\\W_]+`` finds runs between (tests/store/test_search_doc.py pins the equality)."""
    folded = text.lower()
    if folded.isascii():
        return folded.encode("ascii").translate(_ASCII_SEPARATORS).decode("ascii").split()
    folded = "".join(c for c in unicodedata.normalize("NFKD", folded)
                     if not unicodedata.combining(c))
    return _WORD.findall(folded)


def _refang(value: str) -> str:
    v = value.strip().strip("\"'<>()").lower()
    if "[" in v or "(" in v:
        v = v.replace("[.]", ".").replace("(.)", ".").replace("[:]", ":").replace("[@]", "@")
    if v.startswith(("hxxp://", "hxxps://")):
        v = "http" + v[4:]
    return v.rstrip(".")


def normalise_term(value: str) -> str:
    """An observable's canonical form: refanged, lower-case, IP addresses compressed."""
    v = _refang(value)
    if ("." not in v and ":" not in v) or not _IPISH.fullmatch(v) or _PLAIN_IPV4.fullmatch(v):
        # no dot nor colon (a hash): no address nor network ipaddress would read; not
        # IP-like; or an address ipaddress would print unchanged
        return v
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        pass
    try:
        net = ipaddress.ip_network(v, strict=False)
    except ValueError:
        return v
    # a one-address network (198.51.100.7/32) is that address, as trust's claims have it
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def _domain_suffixes(host: str) -> list[str]:
    labels = host.split(".")
    if len(labels) < 2 or not all(labels):
        return []
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def expand_term(value: str) -> list[str]:
    """A value and what it should also be found by (its host, its parent domains)."""
    term = normalise_term(value)
    if not term:
        return []
    out = [term]
    host = ""
    if "://" in term:
        try:
            host = urlsplit(term).hostname or ""
        except ValueError:
            host = ""
    elif "@" in term and " " not in term:
        host = term.rsplit("@", 1)[1]
    elif _DOMAIN.fullmatch(term) and not term[-1].isdigit():
        host = term
    if host:
        out.extend(_domain_suffixes(host) if host != term else _domain_suffixes(host)[1:])
        if host != term and host not in out:
            out.insert(1, host)
    return out


def term_token(term: str) -> str:
    """The one index token standing for a whole normalised observable."""
    return "x" + hashlib.blake2b(term.encode(), digest_size=8).hexdigest()


def _marking(body: dict[str, Any]) -> str:
    refs = [r for r in body.get("object_marking_refs") or [] if isinstance(r, str)]
    levels = {tlp_level(r) for r in refs}
    for level in _TLP_ORDER:
        if level in levels:
            return level
    return refs[0] if refs else ""


def display_name(body: dict[str, Any]) -> str:
    for key in ("name", "value", "pattern", "display_name", "path", "subject"):
        value = body.get(key)
        if value:
            return str(value)[:300]
    if body.get("type") == "relationship":
        return (f"{body.get('source_ref', '?')} {body.get('relationship_type', '')} "
                f"{body.get('target_ref', '?')}")
    return str(body.get("id", ""))


@dataclass(frozen=True, slots=True)
class Doc:
    name: str
    marking: str
    names: str
    doc: str


#: (name, marking, names, doc): :func:`doc_fields`
DocFields = tuple[str, str, str, str]
#: the key of :func:`doc_fields` in ``StixObject.ahead`` (computed ahead by an ingest
#: worker process: :mod:`detente.federation.exchange.pipe`)
DOC_FIELDS = "search"


def doc_of(body: dict[str, Any]) -> Doc:
    """The name, marking and the two texts indexed for one object."""
    return Doc(*doc_fields(body))


def doc_fields(body: dict[str, Any]) -> DocFields:
    """:func:`doc_of` as a plain tuple (name, marking, names, doc): the ingest path's form."""
    get = body.get
    keys = body.keys()  # membership tests: most of the fields below are absent
    terms: list[str] = []
    sco = "created" not in body  # a cyber-observable: its value and name are observables
    name_text: list[str] = []
    prose: list[str] = []
    for key in _NAME_FIELDS:
        if key not in keys:
            continue
        value = body[key]
        if value is not None and isinstance(value, (str, int)) and not isinstance(value, bool):
            name_text.append(str(value))
            if sco and key in ("value", "name", "path"):
                terms.append(str(value))
    for key in _LIST_FIELDS:
        if key not in keys:
            continue
        items = body[key]
        if items:
            name_text += [item for item in items if isinstance(item, str)]
    hashes = get("hashes")
    if isinstance(hashes, dict):
        terms.extend(str(h) for h in hashes.values())
    for ref in get("external_references") or ():
        if isinstance(ref, dict):
            if ref.get("external_id"):
                name_text.append(str(ref["external_id"]))
                terms.append(str(ref["external_id"]))
            if ref.get("url"):
                terms.append(str(ref["url"]))
    pattern = get("pattern")
    if isinstance(pattern, str):
        prose.append(pattern)
        terms += [m.replace("\\'", "'") for m in _LITERAL.findall(pattern)]
    for key in _TEXT_FIELDS:
        if key in keys:
            value = body[key]
            if isinstance(value, str):
                prose.append(value)
    tokens = sorted({_token(t) for raw in terms if raw for t in expand_term(raw)})
    names = " ".join([*words(" ".join(name_text)), *tokens])
    doc = " ".join(words(" ".join(prose)[:_MAX_DOC]))
    name = display_name(body)
    marking = _marking(body)
    if "\x00" in name or "\x00" in names or "\x00" in doc or "\x00" in marking:
        # NUL is valid in STIX strings but not in PostgreSQL text: the index never needs it
        name, marking, names, doc = (f.replace("\x00", " ") for f in (name, marking, names,
                                                                      doc))
    return name, marking, names, doc


#: term tokens of recent terms (parent domains such as ``example.net`` recur in a feed);
#: emptied when full
_TOKENS: dict[str, str] = {}


def _token(term: str) -> str:
    """:func:`term_token` through :data:`_TOKENS`."""
    token = _TOKENS.get(term)
    if token is None:
        if len(_TOKENS) >= 16_384:
            _TOKENS.clear()
        token = _TOKENS[term] = term_token(term)
    return token


# -- queries ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Clause:
    """One word of a query: an observable's term token, or a phrase of words."""

    term: str | None = None
    phrase: tuple[str, ...] = ()
    prefix: bool = False


def _is_observable(word: str) -> bool:
    w = word.lower()
    return any(c in w for c in ".:/@\\[") or bool(_HEX.fullmatch(w)) \
        or bool(_STIX_ID.fullmatch(w))


def parse_query(text: str) -> list[Clause]:
    """Every whitespace-separated word must match: an observable (IP, domain, URL, e-mail,
    hash, STIX id, ``T1059.001``) as a whole value, other words as words; ``word*`` is a
    prefix."""
    clauses: list[Clause] = []
    for raw in text.split():
        if _is_observable(raw):
            clauses.append(Clause(term=term_token(normalise_term(raw))))
            continue
        ws = words(raw)
        if ws:
            clauses.append(Clause(phrase=tuple(ws), prefix=raw.endswith("*")))
    if not clauses:
        raise ValidationError(f"nothing to search for in {text!r}",
                              hint="give a value (IP, domain, hash, URL), a name or a word")
    return clauses


def _fts5(clauses: Sequence[Clause]) -> str:
    parts = []
    for c in clauses:
        if c.term:
            parts.append(c.term)
        else:
            parts.append('"' + " ".join(c.phrase) + '"' + ("*" if c.prefix else ""))
    return " AND ".join(parts)


def _tsquery(clauses: Sequence[Clause], weight: str = "") -> str:
    parts = []
    for c in clauses:
        if c.term:
            parts.append(c.term + (f":{weight}" if weight else ""))
        else:
            ws = list(c.phrase)
            if weight:
                ws = [w + ":" + weight for w in ws]
            if c.prefix:
                ws[-1] += ("*" if weight else ":*")
            parts.append("(" + " <-> ".join(ws) + ")")
    return " & ".join(parts)


@dataclass(frozen=True, slots=True)
class Find:
    """A search (``text``) or a listing (no text), with filters and a page."""

    text: str = ""
    types: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    markings: tuple[str, ...] = ()
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    type: str
    name: str
    origin: str
    marking: str
    revoked: bool
    #: date_added of the latest version
    date_added: int


@dataclass(frozen=True, slots=True)
class Found:
    hits: list[Hit] = field(default_factory=list)
    #: another page follows
    more: bool = False


Progress = Callable[[int, int], None]


class SearchIndex:
    """The catalogue and its full-text index, on one engine (SQLite or PostgreSQL)."""

    def __init__(self, pg: bool) -> None:
        self.pg = pg
        self._ph = "%s" if pg else "?"

    # -- schema --------------------------------------------------------------------
    def create(self, conn: sa.Connection) -> None:
        metadata.create_all(conn)
        for ddl in _PG_GIN if self.pg else (_SQLITE_FTS,):
            conn.exec_driver_sql(ddl)

    def current(self, conn: sa.Connection, meta: sa.Table) -> bool:
        row = conn.execute(sa.select(meta.c.value).where(meta.c.key == _META_KEY)).first()
        return row is not None and row[0] == INDEX_VERSION

    def rebuild(self, conn: sa.Connection, meta: sa.Table, objects: sa.Table,
                progress: Progress | None = None) -> int:
        """Index every object's latest version afresh (a new or outdated index)."""
        if self.pg:
            conn.exec_driver_sql("DROP INDEX IF EXISTS ix_search_docs_fts")
        else:
            conn.exec_driver_sql("DROP TABLE IF EXISTS search_fts")
        metadata.drop_all(conn)
        metadata.create_all(conn)  # the text index comes after the rows: a bulk build
        total = int(conn.execute(sa.select(sa.func.count()).select_from(objects)
                                 .where(objects.c.is_latest.is_(True))).scalar() or 0)
        done, after = 0, -1
        cols = (objects.c.date_added, objects.c.id, objects.c.type, objects.c.origin,
                objects.c.revoked, objects.c.body)
        while True:
            rows = conn.execute(
                sa.select(*cols).where(objects.c.is_latest.is_(True),
                                       objects.c.date_added > after)
                .order_by(objects.c.date_added).limit(2000)).all()
            if not rows:
                break
            self._add_docs(conn, [(int(r[0]), r[1], r[2], r[3], bool(r[4]),
                                   orjson.loads(r[5])) for r in rows])
            done += len(rows)
            after = int(rows[-1][0])
            if progress is not None:
                progress(done, total)
        self.create(conn)
        if not self.pg:
            conn.exec_driver_sql("INSERT INTO search_fts(search_fts) VALUES ('rebuild')")
        conn.execute(meta.delete().where(meta.c.key == _META_KEY))
        conn.execute(meta.insert().values(key=_META_KEY, value=INDEX_VERSION))
        return done

    # -- writes --------------------------------------------------------------------
    def add(self, conn: sa.Connection,
            rows: Sequence[tuple[int, str, str, str, bool, dict[str, Any]]],
            *, newest: bool = False, ahead: Sequence[DocFields | None] | None = None) -> None:
        """Index latest versions: (date_added, id, type, origin, revoked, body).  ``newest``:
        their date_added values are above every indexed row's (a batch just stored);
        ``ahead``: each row's :func:`doc_fields` when computed ahead (None: not)."""
        values = self._add_docs(conn, rows, ahead)
        if self.pg or not values:
            return  # PostgreSQL's GIN index follows the table
        raw = conn.connection.driver_connection
        assert raw is not None
        cur = raw.cursor()
        try:
            if newest:
                seqs = [v[0] for v in values]
                cur.execute("INSERT INTO search_fts(rowid, names, doc) SELECT seq, names, doc "
                            "FROM search_docs WHERE seq BETWEEN ? AND ?", (min(seqs), max(seqs)))
            else:
                cur.executemany("INSERT INTO search_fts(rowid, names, doc) VALUES (?, ?, ?)",
                                [(v[0], v[7], v[8]) for v in values])
        finally:
            cur.close()

    def _add_docs(self, conn: sa.Connection,
                  rows: Sequence[tuple[int, str, str, str, bool, dict[str, Any]]],
                  ahead: Sequence[DocFields | None] | None = None,
                  ) -> list[tuple[Any, ...]]:
        """Insert the catalogue rows (not yet the SQLite text index); returns them."""
        values: list[tuple[Any, ...]] = []
        if not rows:
            return values
        for i, (seq, oid, typ, origin, revoked, body) in enumerate(rows):
            fields = ahead[i] if ahead is not None else None
            name, marking, names, doc = fields if fields is not None else doc_fields(body)
            values.append((seq, oid, typ, origin, marking, name, revoked, names, doc))
        raw = conn.connection.driver_connection
        assert raw is not None
        cols = ", ".join(_COLS)
        if self.pg:
            with raw.cursor() as pcur, pcur.copy(
                    f"COPY search_docs ({cols}) FROM STDIN") as cp:
                for v in values:
                    cp.write_row(v)
            return values
        cur = raw.cursor()
        try:
            marks = ", ".join(["?"] * len(_COLS))
            cur.executemany(f"INSERT INTO search_docs ({cols}) VALUES ({marks})", values)  # noqa: S608
        finally:
            cur.close()
        return values

    def drop(self, conn: sa.Connection, ids: Iterable[str]) -> None:
        """Forget the indexed versions of these ids (before indexing their new latest)."""
        ordered = sorted(set(ids))
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start:start + _CHUNK]
            cond = search_docs.c.object_id.in_(chunk)
            if not self.pg:
                rows = conn.execute(sa.select(search_docs.c.seq, search_docs.c.names,
                                              search_docs.c.doc).where(cond)).all()
                if rows:
                    raw = conn.connection.driver_connection
                    assert raw is not None
                    cur = raw.cursor()
                    try:
                        cur.executemany("INSERT INTO search_fts(search_fts, rowid, names, doc) "
                                        "VALUES ('delete', ?, ?, ?)", [tuple(r) for r in rows])
                    finally:
                        cur.close()
            conn.execute(search_docs.delete().where(cond))

    def refresh(self, conn: sa.Connection, objects: sa.Table, ids: Iterable[str]) -> None:
        """Re-index these ids from what the store holds now (after a delete)."""
        ordered = sorted(set(ids))
        self.drop(conn, ordered)
        for start in range(0, len(ordered), _CHUNK):
            rows = conn.execute(
                sa.select(objects.c.date_added, objects.c.id, objects.c.type, objects.c.origin,
                          objects.c.revoked, objects.c.body)
                .where(objects.c.id.in_(ordered[start:start + _CHUNK]),
                       objects.c.is_latest.is_(True))).all()
            self.add(conn, [(int(r[0]), r[1], r[2], r[3], bool(r[4]), orjson.loads(r[5]))
                            for r in rows])

    # -- reads ---------------------------------------------------------------------
    def find(self, conn: sa.Connection, q: Find) -> Found:
        d = search_docs.c
        cond: list[sa.ColumnElement[bool]] = []
        if q.types:
            cond.append(d.type.in_(q.types))
        if q.origins:
            cond.append(d.origin.in_(q.origins))
        if q.markings:
            cond.append(d.marking.in_(q.markings))
        cols = (d.object_id, d.type, d.name, d.origin, d.marking, d.revoked, d.seq)
        offset, limit = max(q.offset, 0), q.limit
        text = q.text.strip()
        if _STIX_ID.fullmatch(text):  # an id: that object, if the filters allow it
            cond.append(d.object_id == text)
        if not text or _STIX_ID.fullmatch(text):
            stmt = sa.select(*cols).where(*cond).order_by(d.seq.desc())
            return _found(conn.execute(stmt.offset(offset).limit(limit + 1)).all(), limit)
        clauses = parse_query(q.text)
        if self.pg:
            # the GIN index's candidates, capped: a rare word never walks the whole table
            # in date order looking for a page it will not fill
            tsv: sa.ColumnElement[Any] = sa.literal_column("search_docs.tsv")
            named_col = tsv.op("@@")(_pg_tsquery(clauses, "A")).label("named")
            cand = list(conn.execute(sa.select(*cols, named_col)
                                .where(*cond, tsv.op("@@")(_pg_tsquery(clauses)))
                                .limit(_CAP + 1)).all())
            if len(cand) <= _CAP:
                cand.sort(key=lambda r: (not r[7], -int(r[6])))
                return _found(cand[offset:offset + limit + 1], limit)
        named, rest = self._matches(clauses)
        # two streams, each newest first and stopped at the page's end: the matches in
        # names, then the others (no sort of every match: a word in half the store costs
        # one page, not half the store)
        first = sa.select(*cols).select_from(named[0]).where(*cond, *named[2]) \
            .order_by(named[1].desc())
        rows = conn.execute(first.limit(offset + limit + 1)).all()
        if len(rows) > offset + limit:
            return _found(rows[offset:], limit)
        taken = rows[offset:]
        second = (sa.select(*cols).select_from(rest[0]).where(*cond, *rest[2])
                  .order_by(rest[1].desc())
                  .offset(max(offset - len(rows), 0)).limit(limit - len(taken) + 1))
        return _found([*taken, *conn.execute(second).all()], limit)

    def _matches(self, clauses: list[Clause]) -> tuple[_Stream, _Stream]:
        """(from, order column, conditions) of the names matches and of the others."""
        d = search_docs.c
        if self.pg:
            tsv: sa.ColumnElement[Any] = sa.literal_column("search_docs.tsv")
            in_names = tsv.op("@@")(_pg_tsquery(clauses, "A"))
            return ((search_docs, d.seq, [in_names]),
                    (search_docs, d.seq, [tsv.op("@@")(_pg_tsquery(clauses)),
                                          sa.not_(in_names)]))
        # FTS5 drives the join and yields its rowids newest first: the LIMIT stops it
        expr = _fts5(clauses)
        fts = sa.table("search_fts", sa.column("rowid"))
        joined = fts.join(search_docs, d.seq == fts.c.rowid)
        return ((joined, fts.c.rowid, [sa.text("search_fts MATCH :e1").bindparams(
                    e1=f"names : ({expr})")]),
                (joined, fts.c.rowid, [sa.text("search_fts MATCH :e2").bindparams(
                    e2=f"({expr}) NOT names : ({expr})")]))


_Stream = tuple[Any, Any, list[Any]]


def _pg_tsquery(clauses: Sequence[Clause], weight: str = "") -> Any:
    return sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"),
                              _tsquery(clauses, weight=weight))


def _found(rows: Sequence[Any], limit: int) -> Found:
    hits = [Hit(r[0], r[1], r[2], r[3], r[4], bool(r[5]), int(r[6])) for r in rows[:limit]]
    return Found(hits, len(rows) > limit)
