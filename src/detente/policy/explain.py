"""Human lines for a Decision ("who can see this and why")."""

from __future__ import annotations

from detente.policy.model import Decision, Verdict

__all__ = ["explain"]

_HEADLINE = {
    Verdict.ALLOW: "ALLOW — the object may be released as it is.",
    Verdict.ALLOW_REDACTED: "ALLOW (redacted) — a redacted view may be released.",
    Verdict.DENY: "DENY — the object is not released.",
}


def explain(decision: Decision) -> list[str]:
    """One headline, then one line per reason, removed field and travelling rule."""
    lines = [_HEADLINE[decision.verdict]]
    lines.extend(f"  because {reason}" for reason in decision.reasons)
    lines.extend(f"  removed {path}" for path in decision.removed)
    if decision.allowed:
        lines.append(
            f"  onward sharing: {decision.onward}; provider attribution: {decision.attribution}"
        )
    return lines
