"""The analyst UI: server-rendered pages behind an operator login, served by the node.

``web_routes(node)`` gives the routes the node's server mounts at ``/`` (next to TAXII's
``/taxii2/``); ``create_web_app(node)`` runs them alone.  See docs/ui.md.

Import from the modules (``detente.web.app``, ``detente.web.operators``): this package
exports nothing itself, so reading its table definitions never loads the UI.
"""
