"""Sub-commands of `lait`, one module each (see `lait.pipeline.cli`)."""
