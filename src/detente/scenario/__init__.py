"""The demo world: synthetic intelligence about ISIS in Syria, and the coalition story."""
