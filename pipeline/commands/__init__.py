"""Sub-commands of `lait`, one module each (see `pipeline.cli`)."""
