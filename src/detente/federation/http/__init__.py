"""The node's HTTP layer: request signatures (RFC 9421), nonces, authentication, TAXII media
types, the one error family and renderer, the one endpoint wrapper and the one partner client.

Imports no other ``detente.federation`` sub-package: TAXII, exchange, witnessing and PSI all
build on it.
"""
