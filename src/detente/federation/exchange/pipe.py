"""A large local ingest in two processes: reading and validation ahead, in a worker.

``detente ingest`` spends a third of its CPU time before the database sees an object:
reading and decoding the input, and step (1) of the intake path, validation.  For a large
input, :class:`Worker` does that part for batch k+1 in a second process while the main
process stores batch k (steps (2)-(5) of :class:`~detente.federation.exchange.intake.Intake`,
unchanged).  The worker runs the one check of step (1), :func:`intake.screen
<detente.federation.exchange.intake.screen>`, and hands over per batch:

  (1) a header (orjson): the items read so far, the decode failures and the rejections
      (position, id, version, message) of the batch, and each valid object's position,
      id, type, version, spec_version, created_by_ref, revoked, and what pure Python
      makes of it where it lives: its search document (:func:`detente.store.search.
      doc_fields`, taken as computed by the store's index) and its earned-trust claims
      (:func:`detente.trust.claims.extract_ahead`: not for relationships and sightings,
      whose claims name objects looked up in the store), carried as
      ``StixObject.ahead`` and ``StoredObject.ahead``;
  (2) the valid objects' SHA-256 digests, 32 bytes each, concatenated;
  (3) their compact JSON as validated (``StixObject.raw``), joined by newlines (compact
      JSON has none).

The main process rebuilds each :class:`~detente.stix.model.StixObject` from these bytes
(its body is ``orjson.loads(raw)``, the very JSON the worker validated), and ``validate``
returns a ``StixObject`` as it is.  Bytes rather than pickled objects: pickling the
validated objects costs the main process more than decoding their JSON once (measured,
CHANGELOG).  Batches are cut where the in-process path cuts them (every ``batch`` items
that are not decode failures), so the rows, ledger, trust evidence and the summary's
rejections come out identical, in the same order.

Start method: ``fork``, and only from a process with one thread.  The worker reads the
caller's own iterable (a generator over the input files, MISP conversion included),
which cannot be handed to a ``spawn``/``forkserver`` child, and a forked worker starts in
milliseconds where a spawned one imports detente again.  A process with other threads
(``detente serve``: its UI and TAXII handlers, a test client) never forks — locks held by
those threads would stay held in the child — so it ingests in-process; its callers
(sightings, opinions, RFIs) ingest a few objects anyway.  The worker touches nothing it
inherited but the iterable: no database connection, no ledger; it leaves with
``os._exit`` (multiprocessing's), so no inherited finaliser runs.  And only when a core
is free (:func:`spare_core`): on a busy machine the two processes wait on each other.

Bounded memory: the worker blocks sending batch k+2 until the main process has taken
batch k+1, so at most three batches are alive (one being stored, one handed over, one
being read).  Failure: the worker dying or failing is :class:`WorkerFailed` in the main
process — every batch committed before stays, the batch in hand is not written; Ctrl-C
reaches the main process only (the worker ignores SIGINT) and the worker is killed as
the :class:`Worker` closes; a main process killed outright leaves the worker writing
into a closed pipe, and it exits.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import orjson

from detente.errors import DetenteError
from detente.federation.exchange.bulk import batch_done
from detente.federation.exchange.intake import Detail, screen
from detente.stix.bundle import DecodeFailure
from detente.stix.model import StixObject
from detente.store.search import DOC_FIELDS, doc_fields
from detente.trust.claims import CLAIMS, extract_ahead
from detente.trust.config import TrustConfig

__all__ = ["Checked", "Worker", "WorkerFailed", "can_fork", "spare_core", "worth_forking"]

_DIGEST = 32
#: seconds the main process waits for a worker it stopped to exit
_JOIN_SECONDS = 10.0


class WorkerFailed(DetenteError):
    """The ingest worker process died or failed; the batches stored before it stay."""


@dataclass
class Checked:
    """One batch as the worker checked it, in input order within each list."""

    #: items of the input read up to the end of this batch (decode failures included)
    seen: int
    decode_failures: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[Detail] = field(default_factory=list)
    valid: list[StixObject] = field(default_factory=list)
    at: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        """Items of the batch that reached validation."""
        return len(self.rejected) + len(self.valid)


def can_fork() -> bool:
    """A worker may be forked from here: ``fork`` exists and this is the only thread."""
    return ("fork" in multiprocessing.get_all_start_methods()
            and threading.active_count() == 1)


def spare_core() -> bool:
    """A core is free for the worker: the 1-minute load average, this process included,
    leaves more than half a core.  On a busy machine the two processes wait on each
    other and the hand-over is paid for nothing (measured, CHANGELOG)."""
    cpus = os.cpu_count() or 1
    return cpus > 1 and os.getloadavg()[0] < cpus - 0.5


def worth_forking() -> bool:
    """:func:`can_fork` and :func:`spare_core`."""
    return can_fork() and spare_core()


class Worker:
    """Reads and validates ``items`` in a forked process, ``batch`` items at a time;
    iterate it for the :class:`Checked` batches.  ``seen`` items were read before;
    ``trust``: the earned-trust configuration claims are extracted with (None: they are
    left to the main process)."""

    def __init__(self, items: Iterator[tuple[str, object]], *, batch: int,
                 seen: int = 0, trust: TrustConfig | None = None) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe(duplex=False)
        self._process = context.Process(target=_work,
                                        args=(items, batch, seen, trust, child),
                                        name="detente-ingest-worker", daemon=True)
        self._process.start()
        child.close()  # the worker's death is then EOF here
        self.seen = seen
        self._done = False

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def exitcode(self) -> int | None:
        """0: it sent its last batch and left; negative: killed by that signal."""
        return self._process.exitcode

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Wait for the worker when it sent its last batch, else stop it."""
        self._conn.close()
        if self._done:
            self._process.join(_JOIN_SECONDS)
        if self._process.is_alive():
            self._process.kill()
        self._process.join(_JOIN_SECONDS)

    def __iter__(self) -> Iterator[Checked]:
        while True:
            header = orjson.loads(self._recv())
            if "error" in header:
                raise WorkerFailed(f"the ingest worker failed after {self.seen:,} objects: "
                                   f"{header['error']}", hint=_HINT)
            checked = _rebuild(header, self._recv(), self._recv())
            self.seen = checked.seen
            if header["last"]:
                self._done = True
                yield checked
                return
            yield checked

    def _recv(self) -> bytes:
        try:
            return self._conn.recv_bytes()
        except (EOFError, OSError):
            self._process.join(_JOIN_SECONDS)
            raise WorkerFailed(
                f"the ingest worker process died (exit code {self._process.exitcode}) "
                f"after {self.seen:,} objects", hint=_HINT) from None


_HINT = ("the batches stored before it stay (a --strict ingest stored nothing); "
         "ingest the input again: what is stored already counts as duplicates")


def _rebuild(header: dict[str, Any], digests: bytes, raws: bytes) -> Checked:
    """The batch the worker encoded (:meth:`_Frames.encode`), in this process."""
    checked = Checked(header["seen"], [(p, m) for p, m in header["decode"]],
                      [Detail(i, v, m, p) for p, i, v, m in header["rejected"]],
                      at=header["at"])
    meta = header["valid"]
    if not meta:
        return checked
    loads = orjson.loads
    # positional, as validate builds it (id, type, version, spec_version, created_by_ref,
    # revoked, body, raw, digest), and what was computed ahead
    checked.valid = [
        StixObject(oid, typ, version, spec, creator, revoked, loads(raw), raw,
                   digests[n * _DIGEST:(n + 1) * _DIGEST], ahead)
        for n, ((oid, typ, version, spec, creator, revoked, ahead), raw) in enumerate(
            zip(meta, raws.split(b"\n"), strict=True))]
    return checked


# -- the worker process -------------------------------------------------------------------


def _work(items: Iterator[tuple[str, object]], batch: int, seen: int,
          trust: TrustConfig | None, conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    try:
        for frames in _batches(items, batch, seen, trust):
            for frame in frames:
                conn.send_bytes(frame)
            batch_done()
    except (BrokenPipeError, ConnectionResetError):
        return  # the main process is gone or stopped reading: nothing to tell
    except BaseException as exc:  # told to the main process, which raises
        message = exc.message if isinstance(exc, DetenteError) else (
            f"{type(exc).__name__}: {exc}")
        try:
            conn.send_bytes(orjson.dumps({"error": message}))
        except OSError:
            return
    finally:
        conn.close()


def _batches(items: Iterator[tuple[str, object]], batch: int, seen: int,
             trust: TrustConfig | None) -> Iterator[tuple[bytes, bytearray, bytearray]]:
    """The frames of each batch: cut as the in-process path cuts (``batch`` items that
    are not decode failures), the last one (possibly empty) marked ``last``."""
    frames = _Frames()
    for position, raw in items:
        seen += 1
        if isinstance(raw, DecodeFailure | DetenteError):
            frames.decode.append((position, raw.message))
            continue
        frames.add(position, screen(raw, position), trust)
        if frames.items >= batch:
            yield frames.encode(seen, last=False)
            frames = _Frames()
    yield frames.encode(seen, last=True)


class _Frames:
    """One batch as it is read: its header's lists; the digests and compact JSON copied
    into two buffers as they come, sent as two frames (not one per object)."""

    def __init__(self) -> None:
        self.decode: list[tuple[object, str]] = []
        self.rejected: list[tuple[object, str, str, str | None]] = []
        self.valid: list[tuple[Any, ...]] = []
        self.at: list[object] = []
        self.digests = bytearray()
        self.raws = bytearray()

    @property
    def items(self) -> int:
        return len(self.rejected) + len(self.valid)

    def add(self, position: object, checked: StixObject | Detail,
            trust: TrustConfig | None) -> None:
        if isinstance(checked, Detail):
            self.rejected.append((position, checked.id, checked.version, checked.message))
            return
        ahead: dict[str, Any] = {DOC_FIELDS: doc_fields(checked.body)}
        claims = None if trust is None else extract_ahead(checked.body, trust)
        if claims is not None:
            ahead[CLAIMS] = claims
        self.valid.append((checked.id, checked.type, checked.version, checked.spec_version,
                           checked.created_by_ref, checked.revoked, ahead))
        self.at.append(position)
        self.digests += checked.digest
        if self.raws:
            self.raws += b"\n"
        self.raws += checked.raw

    def encode(self, seen: int, *, last: bool) -> tuple[bytes, bytearray, bytearray]:
        header = {"seen": seen, "last": last, "decode": self.decode,
                  "rejected": self.rejected, "valid": self.valid, "at": self.at}
        return orjson.dumps(header), self.digests, self.raws
