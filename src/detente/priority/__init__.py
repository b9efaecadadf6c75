"""Verifiable priority: prove later that we held something first, without releasing it now.

``detente claim ID`` appends a salted hash commitment to the object's canonical content to
this node's ledger (:mod:`.commitment`); ``detente claim reveal ID --to P`` sends the
opening, and P's node checks that the commitment sits in a tree of our log that P's own
witness checked before P's first report of the same content (``federation.witnessing.
claims``). :class:`ClaimBook` keeps our claims and the verifications partners' claims got
here. See ``docs/ledger.md`` (*Verifiable priority*) for the argument.
"""

from detente.priority.book import ClaimBook, ClaimRecord, Verification
from detente.priority.commitment import (
    ClaimError,
    Opening,
    RevealRefused,
    canonical,
    check_opening,
    claim_entry,
    commitment,
)

__all__ = [
    "ClaimBook",
    "ClaimError",
    "ClaimRecord",
    "Opening",
    "RevealRefused",
    "Verification",
    "canonical",
    "check_opening",
    "claim_entry",
    "commitment",
]
