"""`python -m meshlab ...`: the same command line as the `meshlab` script (for a venv whose
scripts folder is not on PATH)."""

from __future__ import annotations

from meshlab.cli import program

if __name__ == "__main__":
    program()
