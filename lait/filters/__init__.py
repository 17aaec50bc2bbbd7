"""Pure, Beam-free filters: each takes a record's fields and returns keep, or (False, reason)."""
