"""The result of a trace: ranked suspects, the bound, and the matched releases as evidence."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

VERDICTS = ("accused", "no-accusation", "never-released")


@dataclass(frozen=True)
class Suspect:
    """One recipient's standing.

    ``threshold_bound`` is the probability, for an innocent recipient, of reaching
    ``threshold`` (at most ``epsilon / n``); ``score_bound`` is the union-bound probability
    that *any* innocent among the ``n`` recipients scores at least ``score``.
    """

    partner: str
    score: float
    threshold: float
    positions: int
    accused: bool
    threshold_bound: float
    score_bound: float | None = None
    decoy_hits: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "partner": self.partner,
            "score": round(self.score, 4),
            "threshold": None if math.isinf(self.threshold) else round(self.threshold, 4),
            "positions": self.positions,
            "accused": self.accused,
            "threshold_bound": self.threshold_bound,
            "score_bound": self.score_bound,
            "decoy_hits": list(self.decoy_hits),
        }


@dataclass(frozen=True)
class MatchedRelease:
    """A released object version the artifact was matched to, and how."""

    object_key: str
    stix_id: str | None
    how: str
    partners: tuple[str, ...]
    positions_read: int
    fingerprint_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "object_key": self.object_key,
            "stix_id": self.stix_id,
            "how": self.how,
            "partners": list(self.partners),
            "positions_read": self.positions_read,
            "fingerprint_ids": list(self.fingerprint_ids),
        }


@dataclass(frozen=True)
class TraceReport:
    """Ranked suspects (most likely first), with the false-accusation bound and evidence."""

    verdict: str
    message: str
    epsilon: float
    recipients: int
    positions_read: int
    positions_erased: int
    suspects: tuple[Suspect, ...] = ()
    evidence: tuple[MatchedRelease, ...] = ()
    notes: tuple[str, ...] = field(default=())
    #: positions at which the design catches a coalition of three (``positions_target``)
    positions_needed: int | None = None
    #: when nobody is accused: how many more objects like the matched ones the trace would
    #: need to read ``positions_needed`` positions (None: they carry no readable position)
    more_objects_needed: int | None = None

    @property
    def accused(self) -> tuple[Suspect, ...]:
        return tuple(s for s in self.suspects if s.accused)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "message": self.message,
            "epsilon": self.epsilon,
            "recipients": self.recipients,
            "positions_read": self.positions_read,
            "positions_erased": self.positions_erased,
            "suspects": [s.to_json() for s in self.suspects],
            "evidence": [e.to_json() for e in self.evidence],
            "positions_needed": self.positions_needed,
            "more_objects_needed": self.more_objects_needed,
            "notes": list(self.notes),
        }

    def to_text(self, limit: int = 10) -> str:
        """Human-readable report for the CLI."""
        lines = [self.message, ""]
        if self.suspects:
            lines.append(f"{'partner':<24} {'score':>9} {'threshold':>10} {'pos':>5}  verdict")
            for s in self.suspects[:limit]:
                verdict = "ACCUSED" if s.accused else "-"
                if s.decoy_hits:
                    verdict += f" (decoy x{len(s.decoy_hits)})"
                lines.append(
                    f"{s.partner:<24} {s.score:>9.2f} {s.threshold:>10.2f} {s.positions:>5}  "
                    f"{verdict}" + (f"  P(innocent)<={s.score_bound:.2e}" if s.score_bound else "")
                )
            lines.append("")
        lines.append(
            f"false-accusation bound: P(any innocent accused) <= {self.epsilon:g} "
            f"over {self.recipients} recipients; {self.positions_read} positions read, "
            f"{self.positions_erased} erased"
        )
        if self.evidence:
            lines.append("matched releases:")
            lines.extend(
                f"  {e.object_key}  via {e.how}, {e.positions_read} positions, "
                f"sent to {len(e.partners)} partner(s)"
                for e in self.evidence[: limit * 3]
            )
        if self.verdict == "no-accusation" and self.positions_needed:
            lines.append(self.need_text())
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def need_text(self) -> str:
        """What it would take to accuse: more objects of the kind matched."""
        if self.more_objects_needed is None:
            return (
                "more evidence needed: the matched objects carry no readable fingerprint "
                "position (plain releases, or every position erased)"
            )
        if self.more_objects_needed == 0:
            return (
                f"{self.positions_read} positions read (>= {self.positions_needed}, enough "
                "to catch up to three colluders): the leak did not come from these "
                "recipients alone, or more than three colluded"
            )
        return (
            f"more evidence needed: about {self.more_objects_needed} more object(s) of the "
            f"same kind ({self.positions_needed} positions to catch a coalition of three)"
        )
