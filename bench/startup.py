"""The CPU work of a run's start, as instructions counted by callgrind: importing what
`meshlab run` imports, then that and preparing lab 2 (load, plan, analysis, the checks'
designs), in the run's own process. Wall times on this shared machine move by 10% or more
from one minute to the next; an instruction count does not (a few parts in a million), so
a change of 1% at start-up shows here, side by side with another checkout's `src`.

Valgrind is Debian's `valgrind`, installed with apt-get when missing (the bench session may;
the tests never do); without it the figures are left out and the bench says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

IMPORT = "import meshlab.cli, meshlab.backends.embedded.backend, meshlab.pipeline"
PREPARE = IMPORT + "\nfrom pathlib import Path\nmeshlab.pipeline.prepare(Path({lab!r}))"
STAGES = {"import": IMPORT, "import_and_prepare": PREPARE}


def _valgrind() -> str | None:
    apt = shutil.which("apt-get")
    if shutil.which("valgrind") is None and apt is not None:
        subprocess.run([apt, "install", "-y", "-q", "valgrind"], capture_output=True, check=False)
    return shutil.which("valgrind")


def _instructions(valgrind: str, code: str, env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory(prefix="meshlab-bench-") as tmp:
        argv = [valgrind, "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out"]
        argv += [sys.executable, "-c", code]
        subprocess.run([sys.executable, "-c", code], env=env, check=True)  # bytecode cached
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found, done.stderr[-2000:]
    return int(found.group(1))


def startup_instructions(srcs: dict[str, Path], lab: Path) -> dict[str, dict[str, int]] | None:
    """Instructions per stage for each checkout's `src` (None: no valgrind here)."""
    valgrind = _valgrind()
    if valgrind is None:
        return None
    out: dict[str, dict[str, int]] = {}
    for name, src in srcs.items():
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPATH"] = str(src)
        out[name] = {
            stage: _instructions(valgrind, code.format(lab=str(lab)), env)
            for stage, code in STAGES.items()
        }
    return out


def describe(counts: dict[str, dict[str, int]] | None) -> str:
    if counts is None:
        return "start-up instructions: no valgrind here (apt-get install valgrind)"
    lines = []
    for name, stages in counts.items():
        shown = ", ".join(f"{stage} {n / 1e9:.3f} G" for stage, n in stages.items())
        lines.append(f"start-up instructions ({name}, callgrind): {shown}")
    if "baseline" in counts and "this" in counts:
        ratios = ", ".join(
            f"{stage} x{counts['this'][stage] / counts['baseline'][stage]:.3f}"
            for stage in counts["this"]
        )
        lines.append(f"  this/baseline: {ratios}")
    return "\n".join(lines)
