"""Exchange with partners: THE intake function (local ingest, TAXII push, pull), pull, push,
cursors, echo detection and key rotation."""
