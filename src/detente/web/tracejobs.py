"""Trace uploads run in the background; the page polls their status.

A trace over a large artifact or many releases takes seconds to minutes, longer than a
request should be held open.  ``TraceJobs.submit`` returns a job id at once; the job runs
on a small thread pool and the page shows a ``<progress>`` bar polled through
``/trace/jobs/<id>/status``.  Jobs belong to the operator who started them and only the
last few are kept, in memory.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from detente.errors import DetenteError
from detente.ledger import verify_inclusion
from detente.ledger.errors import LedgerError
from detente.node import Node
from detente.usecases.trace import TraceOutcome, trace_artifact

__all__ = ["TraceJob", "TraceJobs", "verify_proofs"]

KEEP = 50


@dataclass
class TraceJob:
    id: str
    operator: str
    name: str
    size: int
    started: float = field(default_factory=time.monotonic)
    state: str = "queued"  # queued | running | done | failed
    stage: str = "waiting for a worker"
    finished: float | None = None
    outcome: TraceOutcome | None = None
    proof_checks: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def status(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "stage": self.stage,
                "elapsed": round(self.elapsed, 1), "done": self.state in ("done", "failed")}


def verify_proofs(node: Node, outcome: TraceOutcome) -> list[str]:
    """Check each inclusion proof the trace returned, independently of how it was made."""
    out = []
    for p in outcome.proofs:
        try:
            entry = node.ledger.entry(p["ledger_index"])
            proof = [bytes.fromhex(h) for h in p["proof"]]
            verify_inclusion(entry.leaf_hash, p["ledger_index"], p["tree_size"], proof,
                             node.ledger.root(p["tree_size"]))
            out.append("verified")
        except (LedgerError, ValueError) as exc:
            out.append(f"FAILED: {exc}")
    return out


class TraceJobs:
    def __init__(self, node: Node, workers: int = 2) -> None:
        self.node = node
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="detente-trace")
        self._jobs: OrderedDict[str, TraceJob] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, operator: str, name: str, data: bytes, fmt: str | None) -> TraceJob:
        job = TraceJob(secrets.token_urlsafe(12), operator, name, len(data))
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP:
                self._jobs.popitem(last=False)
        self._pool.submit(self._run, job, data, fmt)
        return job

    def get(self, job_id: str, operator: str) -> TraceJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.operator == operator else None

    def _run(self, job: TraceJob, data: bytes, fmt: str | None) -> None:
        job.state, job.stage = "running", "matching the artifact against this node's releases"
        try:
            outcome = trace_artifact(self.node, data, fmt)
            job.stage = "checking ledger inclusion proofs"
            job.proof_checks = verify_proofs(self.node, outcome)
            job.outcome, job.state, job.stage = outcome, "done", "finished"
        except DetenteError as exc:
            job.error, job.state, job.stage = str(exc), "failed", "failed"
        except Exception as exc:  # a worker must never die silently
            job.error = f"internal error: {type(exc).__name__}"
            job.state, job.stage = "failed", "failed"
        finally:
            job.finished = time.monotonic()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
