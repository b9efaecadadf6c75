"""The analyst UI: server-rendered pages behind an operator login, served by the node.

``web_routes(node)`` gives the routes the node's server mounts at ``/`` (next to TAXII's
``/taxii2/``); ``create_web_app(node)`` runs them alone.  See docs/ui.md.
"""

from detente.web.app import create_web_app, web_routes
from detente.web.operators import Operator, OperatorBook

__all__ = ["Operator", "OperatorBook", "create_web_app", "web_routes"]
