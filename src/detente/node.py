"""A node's home: settings, Ed25519 key pair, STIX identity, store.

``Node.init`` creates a home and refuses to touch an existing one; ``Node.open`` finds it
(``--home`` or ``DETENTE_HOME``).  The private key file is mode 0600 and never printed.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import secrets
import shutil
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
import sqlalchemy as sa
from nacl.signing import SigningKey, VerifyKey

from detente.errors import ConfigError
from detente.fingerprint import Fingerprinter
from detente.ledger import Ledger
from detente.partners import PartnerBook
from detente.priority import ClaimBook
from detente.release import Embedder, Releaser, ReleaseRun
from detente.rfi import RfiBook
from detente.schema import create_schema
from detente.settings import Settings, load_settings, write_settings
from detente.stix.timestamps import format_micros, now_micros
from detente.stix.validate import validate
from detente.store.base import LOCAL, Provenance, Store
from detente.store.engine import make_engine, writer
from detente.store.sql import SqlStore, open_store
from detente.trust import TierChange, TrustConfig, TrustEngine

__all__ = ["Node", "find_home"]

_T = TypeVar("_T")

_APPLIED_KEPT = 256
KEY_FILE = "node.key"
IDENTITY_FILE = "identity.json"


def find_home(home: Path | str | None) -> Path:
    """The node home from ``--home`` or ``DETENTE_HOME``."""
    chosen = home or os.environ.get("DETENTE_HOME")
    if not chosen:
        raise ConfigError(
            "no node home given", hint="pass --home DIR or set DETENTE_HOME"
        )
    return Path(chosen).expanduser().resolve()


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0600) holding ``data``, atomically: nobody ever reads a
    half-written key; FileExistsError if it already exists."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.link(tmp, path)
    finally:
        tmp.unlink()


def _owner_only_sqlite(url: str) -> None:
    """Create a SQLite store file 0600 before SQLite does (it would use the umask, 0644
    usually); SQLite gives its -wal and -shm files the database file's permissions."""
    if not url.startswith("sqlite:///"):
        return
    path = Path(url.removeprefix("sqlite:///"))
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _shown(url: str) -> str:
    """A store URL fit for a message: any password hidden."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def _bind_from_url(url: str) -> dict[str, Any]:
    """What ``serve`` binds, from the URL partners reach us at: its explicit port, and its
    host when that is an IP address (a name may resolve elsewhere, e.g. to a proxy)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(f"--url {url!r} is not a URL with a valid port") from None
    values: dict[str, Any] = {}
    if port is not None:
        values["port"] = port
    with contextlib.suppress(ValueError):
        values["host"] = str(ipaddress.ip_address(parts.hostname or ""))
    return values


def _remove_new(home: Path, existed: bool, before: set[Path]) -> None:
    """Remove what a failed init made: the home if it made it, else the files it added."""
    if not existed:
        shutil.rmtree(home, ignore_errors=True)
        return
    for path in set(home.iterdir()) - before:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _identity_object(name: str) -> dict[str, Any]:
    ts = format_micros(now_micros())[:-4] + "Z"  # millisecond precision, as STIX examples
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": f"identity--{uuid.uuid4()}",
        "created": ts,
        "modified": ts,
        "name": name,
        "identity_class": "organization",
        "description": f"detente node {name}",
    }


@dataclass
class Node:
    home: Path
    settings: Settings
    signing_key: SigningKey = field(repr=False)
    identity: dict[str, Any]
    _store: SqlStore | None = field(default=None, repr=False)
    _services: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    #: simulated time ahead of the wall clock, for the earned-trust engine only.  Always
    #: 0 on a real node; the demo scenario advances it to play weeks in seconds.
    clock_offset_us: int = 0
    #: the latest tier changes this process applied to the release path, with what each
    #: re-evaluation did (what the CLI reports after an action; the record of truth is the
    #: ledger) — bounded, so a long-running serve keeps no growing history
    applied_tier_changes: deque[tuple[TierChange, ReleaseRun]] = field(
        default_factory=lambda: deque(maxlen=_APPLIED_KEPT), repr=False)

    def now(self) -> int:
        """The node's clock for earned trust (µs): the wall clock plus any offset."""
        return now_micros() + self.clock_offset_us

    def _service(self, name: str, build: Callable[[], _T]) -> _T:
        """A node service, built once even when threads ask for it at the same time."""
        with self._lock:
            if name not in self._services:
                self._services[name] = build()
            return self._services[name]  # type: ignore[no-any-return]

    @property
    def name(self) -> str:
        return str(self.settings["name"])

    @property
    def identity_id(self) -> str:
        return str(self.identity["id"])

    @property
    def verify_key(self) -> VerifyKey:
        return self.signing_key.verify_key

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(bytes(self.verify_key)).decode()

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                store = open_store(str(self.settings["store"]))
                try:
                    create_schema(store)
                    self._check_owner(store)
                except BaseException:
                    store.close()
                    raise
                self._store = store
            return self._store

    def _check_owner(self, store: SqlStore) -> None:
        """Refuse a store another node claimed: a home never reads another node's
        objects as its own (e.g. two homes given one PostgreSQL database).  A store made
        before stores were claimed is claimed here when it holds this node's identity as
        its own object."""
        owner = store.owner()
        if owner == self.identity_id:
            return
        if owner is None:
            mine = store.get(self.identity_id)
            if mine is not None and mine.provenance.origin == LOCAL:
                store.claim(self.identity_id)
                return
        raise ConfigError(
            f"the store at {_shown(str(self.settings['store']))} belongs to another node "
            f"({owner or 'one that never claimed it'}), not to {self.name} "
            f"({self.identity_id})",
            hint=f"point 'store' in {self.home / 'detente.toml'} at this node's own database")

    @property
    def communities(self) -> frozenset[str]:
        raw = str(self.settings["communities"])
        return frozenset(c.strip() for c in raw.split(",") if c.strip())

    @property
    def partners(self) -> PartnerBook:
        return self._service("partners", lambda: PartnerBook(
            self.store.engine, tier_source=self.trust.tier))

    @property
    def trust(self) -> TrustEngine:
        """The earned-trust engine: the partner book reads earned tiers through it.

        This is where "a tier changed → re-evaluate that partner's releases" is wired,
        once: every tier change the engine stores reaches the release path through
        :meth:`_tier_changed`, whoever caused it (intake, the analyst, expiry)."""
        return self._service("trust", lambda: TrustEngine(
            self.store.engine, self.store, ledger=self.ledger,
            partners=PartnerBook(self.store.engine), config=TrustConfig(clock=self.now),
            on_tier_change=self._tier_changed))

    def _tier_changed(self, changes: Sequence[TierChange]) -> None:
        for change in changes:
            run = self.releaser.reevaluate(change.partner)
            self.applied_tier_changes.append((change, run))

    @property
    def claims(self) -> ClaimBook:
        """Verifiable priority: our claims, and partners' claims verified here."""
        return self._service("claims", lambda: ClaimBook(self.store.engine, self.ledger))

    @property
    def rfis(self) -> RfiBook:
        """Requests for information: ours, partners', their answers and credits."""
        return self._service("rfis", lambda: RfiBook(self.store, self.ledger))

    @property
    def ledger(self) -> Ledger:
        return self._service("ledger", lambda: Ledger(
            writer(self.store.engine), f"detente/{self.name}", signing_key=self.signing_key,
            key_name=f"detente/{self.name}",
        ))

    @property
    def releaser(self) -> Releaser:
        def build() -> Releaser:
            default = str(self.settings["default_marking"]).strip().lower() or None
            return Releaser(
                self.store, self.partners, node_name=self.name,
                node_identity=self.identity_id, communities=self.communities,
                default_tlp=default, ledger=self.ledger, embedder=self._embedder(),
                holds=self._refuted_holds,
            )

        return self._service("releaser", build)

    def _refuted_holds(self) -> dict[str, frozenset[str]]:
        """The release path's holds (read once per release run): every report we refuted
        goes to nobody (``refuted_release = "withdraw"``, the default) or only to the
        partners our refuting opinion names (``"with-opinion"``).  An unknown setting
        withholds from everyone: fail closed."""
        from detente.opinions import refuted_audiences

        mode = str(self.settings["refuted_release"]).strip().lower()
        everyone = self.partners.all()

        def names_of(entries: Iterable[str]) -> frozenset[str]:
            if mode != "with-opinion":
                return frozenset()
            wanted = set(entries)
            return frozenset(p.name for p in everyone
                             if p.name in wanted or (p.identity_id or "") in wanted)

        return refuted_audiences(self.store, self.identity_id, names_of)

    @property
    def fingerprinter(self) -> Fingerprinter:
        def build() -> Fingerprinter:
            return Fingerprinter(self.secret_file(str(self.settings["fingerprint_secret_file"])))

        return self._service("fingerprinter", build)

    def _embedder(self) -> Embedder:
        """The leak-attribution hook of the release path: a fingerprint in every view.

        The node secret and the codewords never leave the node; only the opaque
        fingerprint id goes into the ledger entry."""
        fp = self.fingerprinter

        def embed(view: dict[str, Any], partner: str, object_key: str, *,
                  record: bool = True, encoded: bytes | None = None
                  ) -> tuple[dict[str, Any], str | None, str | None]:
            # the view is the embedder's own (just parsed by the release path): no copy
            result = fp.embed(view, partner, object_key=object_key, copy=False,
                              encoded=encoded)
            if not record:
                return result.view, result.fingerprint_id, None
            return (result.view, result.fingerprint_id,
                    orjson.dumps(result.record.to_json()).decode())

        return embed

    def secret_file(self, name: str, size: int = 32) -> bytes:
        """A node-local secret (e.g. the fingerprint key), created on first use, 0600."""
        path = self.home / name
        if not path.exists():
            with contextlib.suppress(FileExistsError):  # another thread made it first
                _write_private(path, secrets.token_bytes(size))
        return path.read_bytes()

    def close(self) -> None:
        self._services.clear()
        if self._store is not None:
            self._store.close()
            self._store = None

    @classmethod
    def init(cls, home: Path, name: str, *, store_url: str | None = None,
             url: str | None = None, communities: str = "",
             default_marking: str = "") -> Node:
        """Create a new node home; refuse to overwrite an existing one."""
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(
                f"node name {name!r} is not usable",
                hint="use letters, digits, '-' or '_' (e.g. us, fr, ru)",
            )
        if (home / "detente.toml").exists() or (home / KEY_FILE).exists():
            raise ConfigError(
                f"{home} already holds a detente node; refusing to overwrite it",
                hint="choose another --home, or remove the old one yourself",
            )
        existed = home.exists()
        before = set(home.iterdir()) if existed and home.is_dir() else set()
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            return cls._init(home, name, store_url, url, communities, default_marking)
        except BaseException:
            _remove_new(home, existed, before)  # a failed init leaves nothing behind
            raise

    @classmethod
    def _init(cls, home: Path, name: str, store_url: str | None, url: str | None,
              communities: str, default_marking: str) -> Node:
        os.chmod(home, 0o700)  # the home holds every object, TLP:RED included: owner only
        values: dict[str, Any] = {"name": name, "communities": communities}
        if store_url:
            values["store"] = store_url
        if url:
            values["url"] = url
            values.update(_bind_from_url(url))
        if default_marking:
            values["default_marking"] = default_marking
        key = SigningKey.generate()
        _write_private(home / KEY_FILE, base64.b64encode(bytes(key)) + b"\n")
        identity = _identity_object(name)
        (home / IDENTITY_FILE).write_bytes(orjson.dumps(identity, option=orjson.OPT_INDENT_2))
        write_settings(home, values)
        for written in (home / IDENTITY_FILE, home / "detente.toml"):
            os.chmod(written, 0o600)
        settings = load_settings(home)
        store_url = str(settings["store"])
        _owner_only_sqlite(store_url)
        store = SqlStore(make_engine(store_url))
        try:
            if store.holds_tables():
                raise ConfigError(
                    f"the database {_shown(store_url)} already holds a detente store "
                    "(another node's, or an earlier init's): refusing to share it",
                    hint="give each node its own empty database")
            store.create()
            create_schema(store)
            store.claim(identity["id"])
            node = cls(home, settings, key, identity, store)
            store.put_many([validate(identity)], Provenance())
            node.ledger.status()
        except BaseException:
            store.close()
            raise
        return node

    @classmethod
    def open(cls, home: Path) -> Node:
        settings = load_settings(home)
        try:
            seed = base64.b64decode((home / KEY_FILE).read_bytes().strip(), validate=True)
            key = SigningKey(seed)
        except FileNotFoundError:
            raise ConfigError(f"{home / KEY_FILE} is missing: the node has no key") from None
        except Exception:
            raise ConfigError(f"{home / KEY_FILE} does not hold an Ed25519 key") from None
        mode = (home / KEY_FILE).stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(
                f"{home / KEY_FILE} is readable by others (mode {mode:o})",
                hint=f"chmod 600 {home / KEY_FILE}",
            )
        try:
            identity = orjson.loads((home / IDENTITY_FILE).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            raise ConfigError(f"{home / IDENTITY_FILE} is missing or not JSON") from None
        return cls(home, settings, key, identity)
