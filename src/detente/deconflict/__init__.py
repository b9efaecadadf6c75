"""Private deconfliction: ECDH private set intersection between two nodes.

Message in, message out, so the HTTP edge only carries bytes::

    requester = Requester(items, mode=Mode.INTERSECTION, partner="fr")
    query = requester.start()                                   # (1) → bytes over HTTP
    response = responder.answer(QueryMessage.from_bytes(b), partner="us")   # (2)
    result = requester.finish(ResponseMessage.from_bytes(b2))   # (3)

That is intersection mode. Cardinality, pointer and mutual modes continue
``requester.reveal(response)`` → ``responder.conclude(reveal)`` →
``requester.conclude(opening)`` (the responder compares in cardinality and pointer modes;
see :mod:`.protocol`); the modes a set is offered in are the responder's
(``Responder(modes=…)``). Items come from the encoders (:func:`observable`, :func:`from_sco`,
:func:`from_pattern`, :func:`name`, :meth:`Event.items`). Budgets refuse probing; every
session leaves a :class:`SessionRecord` (never items) on both sides.
"""

from detente.deconflict.budget import (
    Budget,
    BudgetBook,
    Budgets,
    MemoryBudgetBook,
    SqlBudgetBook,
    Usage,
)
from detente.deconflict.errors import (
    BudgetExceeded,
    DeconflictError,
    EncodingError,
    ProtocolError,
    ReplayError,
    UnsupportedVersion,
    WrongModeError,
)
from detente.deconflict.items import Item, from_pattern, from_sco, name, observable
from detente.deconflict.messages import (
    PROTOCOL_VERSION,
    Message,
    Mode,
    OpeningMessage,
    QueryMessage,
    ResponseMessage,
    RevealMessage,
    parse_message,
)
from detente.deconflict.places import (
    EncodingReport,
    Event,
    PlaceTimeGrid,
    conflicts,
    measure_encoding,
)
from detente.deconflict.prepared import Pointer, SetDigest
from detente.deconflict.protocol import Requester, Responder, Result
from detente.deconflict.records import Outcome, Role, SessionRecord

__all__ = [
    "PROTOCOL_VERSION",
    "Budget",
    "BudgetBook",
    "BudgetExceeded",
    "Budgets",
    "DeconflictError",
    "EncodingError",
    "EncodingReport",
    "Event",
    "Item",
    "MemoryBudgetBook",
    "Message",
    "Mode",
    "OpeningMessage",
    "Outcome",
    "PlaceTimeGrid",
    "Pointer",
    "ProtocolError",
    "QueryMessage",
    "ReplayError",
    "Requester",
    "Responder",
    "ResponseMessage",
    "Result",
    "RevealMessage",
    "Role",
    "SessionRecord",
    "SetDigest",
    "SqlBudgetBook",
    "UnsupportedVersion",
    "Usage",
    "WrongModeError",
    "conflicts",
    "from_pattern",
    "from_sco",
    "measure_encoding",
    "name",
    "observable",
    "parse_message",
]
