"""Federation: the node-to-node layer, one sub-package per concept.

- :mod:`detente.federation.http` — signatures, nonces, authentication, media types, the one
  error renderer, the one endpoint wrapper, the one partner client;
- :mod:`detente.federation.taxii` — the TAXII 2.1 server;
- :mod:`detente.federation.exchange` — the one intake function, pull, push, echo, cursors,
  key rotation;
- :mod:`detente.federation.witnessing` — ledgers over the network;
- :mod:`detente.federation.psi` — deconfliction over the network.

Import from the sub-packages' modules; this package itself exports nothing, so importing
one concept never drags in the others.
"""
