"""Use cases that combine capabilities, shared by the CLI and the web UI (the edge).

Capabilities never import this package; it imports them.
"""
