"""Feeds: any TAXII 2.1 server this node pulls from (medallion, OpenCTI, a MISP TAXII
server, another detente node through a client credential).

A feed is not a partner: it has no key (its answers are unsigned), no tier and nothing is
released to it.  What it sends goes through THE intake path with provenance
``feed:NAME`` — validated, refused when it claims to be created by this node or touches
material created here, versioned, a ledger ``receipt`` each — and earned trust keeps a
record of it as a source of its own (its reliability trend, corroboration), without a
tier.  With ``accept_corrections`` a version the feed sent before may come again with
other content (publishers such as MITRE correct objects without a new ``modified``): the
stored body is replaced, a ``correction`` ledger entry is written and the views released
of it are cut again.

For one feed, :func:`pull_feed`:

  (1) locates the collection: the URL is a discovery document (its default API root,
      same origin only), an API root, or a collection; of the API root's collections the
      one named by ``collection`` (id, alias or title), else the only readable one;
  (2) pages it through the partner pager (:class:`~detente.federation.exchange.pull._Puller`)
      over a :class:`~detente.federation.http.client.FeedClient` — the same bounds
      (page bytes, pages, time budget), retries and media-type checks as a partner's —
      following ``next`` tokens; the cursor (``sync_cursors``, source ``feed:NAME``) is
      saved after each committed page, so an interrupted pull resumes.

The ``feeds`` table is read and written here only.  Credentials (a password or a token)
never enter the database: each feed's are in ``feeds/NAME.json`` under the node's home,
mode 0600 in a 0700 directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from detente.errors import (
    ConflictError,
    DetenteError,
    NotFoundError,
    StoreError,
    ValidationError,
)
from detente.federation.exchange.cursors import (
    Cursor,
    forget_cursors,
    load_cursor,
    save_cursor,
)
from detente.federation.exchange.intake import Intake, Source
from detente.federation.exchange.pull import PartnerSummary, Progress, _Puller, sync_all
from detente.federation.http.client import FeedClient, Limits, PartnerProtocolError
from detente.federation.schema import feeds as feeds_table
from detente.node import Node
from detente.stix.timestamps import now_micros
from detente.store.base import feed_origin
from detente.store.engine import writer

__all__ = ["Feed", "add_feed", "feed_client", "get_feed", "list_feeds", "locate",
           "pull_feed", "pull_feeds", "remove_feed", "sync_sources"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SECRETS_DIR = "feeds"
_MAX_SECRET = 4096


@dataclass(frozen=True, slots=True)
class Feed:
    """A TAXII feed as this node knows it (never its password or token)."""

    name: str
    url: str
    collection: str | None
    auth: str  # none | basic | bearer
    user: str | None
    accept_corrections: bool
    added_at: int

    @property
    def source(self) -> str:
        """Its origin in the store and its source in earned trust: ``feed:NAME``."""
        return feed_origin(self.name)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "url": self.url,
                "collection": self.collection, "auth": self.auth, "user": self.user,
                "accept_corrections": self.accept_corrections, "added_at": self.added_at}


# -- the feed book ----------------------------------------------------------------------------
def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValidationError(f"feed name {name!r} is not usable", hint="use 1-63 lowercase "
                              "letters, digits, '-' or '_', starting with a letter or digit")
    return name


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"feed URL {url!r} must be an http:// or https:// URL",
                              hint="the TAXII server's discovery URL (…/taxii2/), an API "
                                   "root, or a collection")
    if parts.username or parts.password:
        raise ValidationError("a feed URL must not hold credentials",
                              hint="pass --user and --password, or --token")
    return url if url.endswith("/") else url + "/"


def _check_secret(value: str, what: str) -> str:
    if not value or len(value) > _MAX_SECRET or any(ord(c) < 32 for c in value):
        raise ValidationError(f"the {what} is empty, too long or holds control characters")
    return value


def _secret_path(node: Node, name: str) -> Path:
    return node.home / _SECRETS_DIR / f"{name}.json"


def _write_secret(node: Node, name: str, doc: dict[str, str]) -> None:
    """Write a feed's credentials owner-only (0600 in a 0700 directory), atomically."""
    folder = node.home / _SECRETS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    path = _secret_path(node, name)
    tmp = folder / f".{name}.{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(doc))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _read_secret(node: Node, feed: Feed) -> dict[str, str]:
    if feed.auth == "none":
        return {}
    path = _secret_path(node, feed.name)
    try:
        mode = path.stat().st_mode & 0o777
        doc = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        raise DetenteError(f"feed {feed.name}: its credentials ({path}) are missing or "
                           "unreadable", hint=f"'detente feed remove {feed.name}' and add "
                           "it again with its credentials") from None
    if mode & 0o077:
        raise DetenteError(f"feed {feed.name}: {path} is readable by others (mode "
                           f"{mode:o})", hint=f"chmod 600 {path}")
    if not isinstance(doc, dict):
        raise DetenteError(f"feed {feed.name}: {path} does not hold its credentials")
    return {k: v for k, v in doc.items() if isinstance(v, str)}


def add_feed(node: Node, name: str, url: str, *, collection: str | None = None,
             user: str | None = None, password: str | None = None,
             token: str | None = None, accept_corrections: bool = False) -> Feed:
    """Record a feed (ConflictError if the name is taken); nothing is fetched yet."""
    _check_name(name)
    url = _check_url(url)
    if token is not None and (user is not None or password is not None):
        raise ValidationError("give --user and --password, or --token, not both")
    if (user is None) != (password is None):
        raise ValidationError("--user and --password go together")
    auth, secret = "none", {}
    if token is not None:
        auth, secret = "bearer", {"token": _check_secret(token, "token")}
    elif user is not None and password is not None:
        _check_secret(user, "user name")
        auth, secret = "basic", {"password": _check_secret(password, "password")}
    if collection is not None and not collection.strip():
        raise ValidationError("--collection is empty")
    feed = Feed(name, url, collection, auth, user, accept_corrections, now_micros())
    try:
        with writer(node.store.engine).begin() as conn:
            conn.execute(feeds_table.insert().values(
                name=name, url=url, collection=collection, auth=auth, user=user,
                accept_corrections=accept_corrections, added_at=feed.added_at))
            if secret:  # inside the transaction: a failed write records no feed
                _write_secret(node, name, secret)
    except IntegrityError:
        raise ConflictError(f"a feed named {name!r} already exists",
                            hint=f"'detente feed remove {name}' first") from None
    return feed


def _row(r: Any) -> Feed:
    return Feed(r.name, r.url, r.collection, r.auth, r.user, bool(r.accept_corrections),
                int(r.added_at))


def list_feeds(node: Node) -> list[Feed]:
    with node.store.engine.connect() as conn:
        return [_row(r) for r in conn.execute(
            sa.select(feeds_table).order_by(feeds_table.c.name))]


def get_feed(node: Node, name: str) -> Feed:
    with node.store.engine.connect() as conn:
        r = conn.execute(sa.select(feeds_table).where(feeds_table.c.name == name)).first()
    if r is None:
        raise NotFoundError(f"no feed named {name!r}", hint="see 'detente feed list'")
    return _row(r)


def remove_feed(node: Node, name: str) -> Feed:
    """Forget a feed, its cursor and its credentials; what it sent stays stored (with
    its provenance)."""
    feed = get_feed(node, name)
    with writer(node.store.engine).begin() as conn:
        conn.execute(feeds_table.delete().where(feeds_table.c.name == name))
    forget_cursors(node.store.engine, feed.source)
    with contextlib.suppress(FileNotFoundError):
        _secret_path(node, name).unlink()
    return feed


def feed_cursor(node: Node, feed: Feed) -> Cursor:
    return load_cursor(node.store.engine, feed.source)


# -- (1) locating the collection ---------------------------------------------------------------
def feed_client(node: Node, feed: Feed, limits: Limits | None = None, *,
                transport: httpx.BaseTransport | None = None) -> FeedClient:
    secret = _read_secret(node, feed)
    return FeedClient(feed.source, feed.url, limits, user=feed.user,
                      password=secret.get("password"), token=secret.get("token"),
                      transport=transport)


def locate(client: FeedClient, feed: Feed) -> str:
    """The objects URL of the feed's collection (step (1))."""
    doc = client.get(feed.url).json()
    if "api_roots" in doc or "default" in doc:                  # a discovery document
        root = doc.get("default") or next(iter(doc.get("api_roots") or []), None)
        if not isinstance(root, str):
            raise PartnerProtocolError(client.name, "its TAXII discovery names no API root")
        root_url = urljoin(feed.url, root)
    elif "can_read" in doc and isinstance(doc.get("id"), str):  # a collection
        return urljoin(feed.url, "objects/")
    elif "versions" in doc or "max_content_length" in doc:      # an API root
        root_url = feed.url
    else:
        raise PartnerProtocolError(client.name, f"{feed.url} is not a TAXII 2.1 discovery "
                                   "document, API root or collection")
    root_url = _same_origin(client, root_url).rstrip("/") + "/"
    listing = client.get(urljoin(root_url, "collections/")).json()
    collections = listing.get("collections") or []
    if not isinstance(collections, list):
        raise PartnerProtocolError(client.name, "its collections list is malformed")
    readable = [c for c in collections if isinstance(c, dict) and isinstance(c.get("id"), str)
                and c.get("can_read", True) is not False]
    chosen = _choose(client, feed, readable)
    return urljoin(root_url, f"collections/{quote(chosen, safe='')}/objects/")


def _choose(client: FeedClient, feed: Feed, readable: list[dict[str, Any]]) -> str:
    def named(c: dict[str, Any]) -> str:
        return f"{c['id']} ({str(c.get('title', ''))[:80]})"

    listed = ", ".join(named(c) for c in readable[:20]) or "none"
    if feed.collection is not None:
        wanted = feed.collection.lower()
        for key in ("id", "alias", "title"):
            for c in readable:
                if str(c.get(key, "")).lower() == wanted:
                    return str(c["id"])
        raise PartnerProtocolError(client.name, f"serves no readable collection "
                                   f"{feed.collection!r}; it serves: {listed}")
    if len(readable) == 1:
        return str(readable[0]["id"])
    raise PartnerProtocolError(
        client.name, f"serves {len(readable)} readable collections: {listed}",
        hint=f"choose one: 'detente feed remove {feed.name}', then add it again with "
             "--collection ID")


def _same_origin(client: FeedClient, url: str) -> str:
    ours, theirs = urlsplit(client.base_url), urlsplit(url)
    if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
        raise PartnerProtocolError(client.name, f"its API root {url!r} is not on the feed's "
                                   f"own server ({client.base_url})")
    return url


# -- (2) pulling -----------------------------------------------------------------------------------
def pull_feed(node: Node, name: str, *, limits: Limits | None = None,
              progress: Progress | None = None,
              transport: httpx.BaseTransport | None = None) -> PartnerSummary:
    """Pull one feed from its cursor; never raises for the feed's faults."""
    summary = PartnerSummary(feed_origin(name))
    engine = node.store.engine
    try:
        feed = get_feed(node, name)
        trust = (limits or Limits()).trust
        with feed_client(node, feed, limits, transport=transport) as client, \
                Intake(node, Source.feed(name, accept_corrections=feed.accept_corrections),
                       trust=trust) as intake:
            objects_url = locate(client, feed)
            _Puller(node, client, summary, progress, intake, objects_url=objects_url,
                    follow_next=True).run()
    except DetenteError as exc:
        summary.error = str(exc)
    try:
        save_cursor(engine, load_cursor(engine, summary.partner).finished(summary.error))
    except StoreError as exc:
        summary.warnings.append(f"could not record the run: {exc}")
    return summary


def pull_feeds(node: Node, names: Sequence[str] | None = None, *,
               limits: Limits | None = None, progress: Progress | None = None,
               transport: httpx.BaseTransport | None = None) -> list[PartnerSummary]:
    """Pull every feed (or those named) in turn; one feed's failure stops only it."""
    chosen = list(names) if names is not None else [f.name for f in list_feeds(node)]
    out: list[PartnerSummary] = []
    for name in chosen:
        try:
            out.append(pull_feed(node, name, limits=limits, progress=progress,
                                 transport=transport))
        except Exception as exc:  # a bug must not stop the other feeds either
            out.append(PartnerSummary(feed_origin(name), error=f"feed {name}: internal "
                                      f"error: {type(exc).__name__}: {exc}"))
    return out


def sync_sources(node: Node, partners: Sequence[str] | None = None,
                 feeds: Sequence[str] | None = None, *, limits: Limits | None = None,
                 progress: Progress | None = None) -> list[PartnerSummary]:
    """``detente sync``: every partner then every feed; naming partners or feeds pulls
    only those named."""
    if not partners and not feeds:
        return sync_all(node, None, limits=limits, progress=progress) + \
            pull_feeds(node, None, limits=limits, progress=progress)
    out: list[PartnerSummary] = []
    if partners:
        out += sync_all(node, partners, limits=limits, progress=progress)
    if feeds:
        out += pull_feeds(node, feeds, limits=limits, progress=progress)
    return out
