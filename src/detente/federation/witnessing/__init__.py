"""The ledger over the network: ledger routes, remote witnessing of a partner's log,
auditing a partner's log, collected cosignatures, and log names and keys."""
