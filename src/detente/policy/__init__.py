"""The release policy: markings -> decisions with reasons; redaction.

``decide(obj, recipient, ctx)`` is pure and fails closed.  See docs/policy.md.
"""

from __future__ import annotations

from detente.policy.engine import decide, matrix, support_view
from detente.policy.errors import MalformedMarkingError, PolicyError
from detente.policy.explain import explain
from detente.policy.markings import (
    ACS_EXTENSION_ID,
    IEP_EXTENSION_ID,
    TLP1_IDS,
    TLP2_EXTENSION_ID,
    TLP2_IDS,
    TLP_IDS,
)
from detente.policy.model import Decision, NodeContext, Recipient, Verdict
from detente.policy.releasability import (
    DETENTE_IDENTITY_ID,
    RELEASABILITY_CREATED,
    RELEASABILITY_EXTENSION_ID,
    extension_definition,
    releasability_marking,
    releasability_schema,
)

__all__ = [
    "ACS_EXTENSION_ID",
    "DETENTE_IDENTITY_ID",
    "IEP_EXTENSION_ID",
    "RELEASABILITY_CREATED",
    "RELEASABILITY_EXTENSION_ID",
    "TLP1_IDS",
    "TLP2_EXTENSION_ID",
    "TLP2_IDS",
    "TLP_IDS",
    "Decision",
    "MalformedMarkingError",
    "NodeContext",
    "PolicyError",
    "Recipient",
    "Verdict",
    "decide",
    "explain",
    "extension_definition",
    "matrix",
    "releasability_marking",
    "releasability_schema",
    "support_view",
]
