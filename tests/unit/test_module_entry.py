"""`python -m meshlab` is the `meshlab` script: same commands, same exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_python_m_meshlab_runs_the_cli_with_its_exit_codes(tmp_path: Path) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text("title: x\nchecks:\n  - name: a\n    note: risky: yes\n")
    done = subprocess.run(
        [sys.executable, "-m", "meshlab", "run", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"{lab}:4:" in done.stderr
    assert "Traceback" not in done.stderr
