"""Fingerprint parameters: declared once, validated when built."""

from __future__ import annotations

from dataclasses import dataclass

from detente.fingerprint.errors import ParamsError


@dataclass(frozen=True)
class FingerprintParams:
    """Tunable knobs of the code, the channels and the trace.

    ``epsilon`` is the total false-accusation target: the probability that *any* innocent
    recipient is accused by one trace is at most ``epsilon`` (union bound over recipients).
    ``cutoff`` bounds every symbol probability from below (Tardos' cut-off), as a fraction
    of the uniform ``1/q`` (0.1 on a binary position: every bias in [0.05, 0.95]).
    ``max_metres`` caps coordinate perturbation.

    Where fingerprints go: a view whose every marking is in ``plain_markings`` (TLP level
    names such as ``"clear"`` — TLP 1.0 WHITE counts as CLEAR — or marking-definition ids)
    is released unmodified, as is any view of a type in ``plain_types``; a type in
    ``marked_types`` is fingerprinted whatever its marking.  ``positions_target`` is the
    number of positions read at which a coalition of three among a hundred recipients is
    caught in at least 99% of leaks under every attack the benchmark plays (measured by
    ``bench/trace.py``); trace uses it to say how many more objects it would need.
    """

    epsilon: float = 1e-3
    cutoff: float = 0.1
    dirichlet_max_q: int = 32
    max_metres: float = 25.0
    text_context: int = 2
    decoys: bool = False
    decoy_domain: str = "canary.invalid"
    max_artifact_bytes: int = 50_000_000
    plain_markings: frozenset[str] = frozenset({"clear"})
    plain_types: frozenset[str] = frozenset()
    marked_types: frozenset[str] = frozenset()
    positions_target: int = 600

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon < 1.0:
            raise ParamsError(f"epsilon must be in (0, 1), got {self.epsilon}")
        if not 0.0 < self.cutoff < 1.0:
            raise ParamsError(f"cutoff must be in (0, 1), got {self.cutoff}")
        if not 0.0 <= self.max_metres <= 1000.0:
            raise ParamsError(f"max_metres must be 0..1000, got {self.max_metres}")
        if not 1 <= self.text_context <= 6:
            raise ParamsError(f"text_context must be 1..6, got {self.text_context}")
        if not 1 <= self.positions_target <= 1_000_000:
            raise ParamsError(f"positions_target must be 1..1e6, got {self.positions_target}")
        for knob in ("plain_markings", "plain_types", "marked_types"):
            value = getattr(self, knob)
            if not isinstance(value, frozenset) or not all(isinstance(v, str) for v in value):
                raise ParamsError(f"{knob} must be a frozenset of strings")
        if self.plain_types & self.marked_types:
            raise ParamsError("a type cannot be both in plain_types and in marked_types")
        if self.dirichlet_max_q < 2:
            raise ParamsError("dirichlet_max_q must be at least 2")
