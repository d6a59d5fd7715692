"""`python -m meshlab ...`: the same command line as the `meshlab` script (for a venv whose
scripts folder is not on PATH)."""

from __future__ import annotations

import sys

from meshlab.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
