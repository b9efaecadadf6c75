"""Requests for information between partners: ask chosen partners, answer, credit answers.

An RFI is a STIX 2.1 ``note`` (label ``detente-rfi``) under TLP:AMBER (or the marking asked)
and a releasability marking naming exactly the partners asked, so the release policy — not
this package — sends it to them and to nobody else (the question reveals interest). An
answer is a ``note`` (label ``detente-rfi-answer``) whose ``object_refs`` are the RFI and the
objects offered, marked releasable to the asker only; the objects themselves go under their
own policy. The asker's node credits each answering partner once per answer, in its ledger
(:class:`RfiBook`). See ``docs/rfi.md``.
"""

from detente.rfi.book import Rfi, RfiBook, RfiError, answer_note, question_note

__all__ = ["Rfi", "RfiBook", "RfiError", "answer_note", "question_note"]
