"""`python -m lait ...` is the `lait` command."""

import sys

from lait.pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
