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
    of the uniform ``1/q``.  ``max_metres`` caps coordinate perturbation.
    """

    epsilon: float = 1e-3
    cutoff: float = 0.3
    dirichlet_max_q: int = 32
    list_chunk: int = 4
    max_metres: float = 25.0
    max_number_q: int = 256
    text_context: int = 2
    decoys: bool = False
    decoy_domain: str = "canary.invalid"
    max_artifact_bytes: int = 50_000_000

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon < 1.0:
            raise ParamsError(f"epsilon must be in (0, 1), got {self.epsilon}")
        if not 0.0 < self.cutoff < 1.0:
            raise ParamsError(f"cutoff must be in (0, 1), got {self.cutoff}")
        if not 2 <= self.list_chunk <= 5:
            raise ParamsError(f"list_chunk must be 2..5, got {self.list_chunk}")
        if not 0.0 <= self.max_metres <= 1000.0:
            raise ParamsError(f"max_metres must be 0..1000, got {self.max_metres}")
        if not 2 <= self.max_number_q <= 4096:
            raise ParamsError(f"max_number_q must be 2..4096, got {self.max_number_q}")
        if not 1 <= self.text_context <= 6:
            raise ParamsError(f"text_context must be 1..6, got {self.text_context}")
        if self.dirichlet_max_q < 2:
            raise ParamsError("dirichlet_max_q must be at least 2")
