"""What a student sees on a terminal: the header before the first request, then a bar per
check that ends at 100% when the check decides. Run under a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshlab.checks.sampling import estimated_total, focus_bucket
from meshlab.checks.stats import Design, SequentialSplitTest

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def run_in_a_terminal(*args: str, timeout: float = 60) -> str:
    main, secondary = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40"}
    env.pop("CI", None)  # rich keeps CI output plain; a student's terminal is not CI
    process = subprocess.Popen(
        [sys.executable, "-c", "from meshlab.cli import main; main()", *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        cwd=REPO,
        env=env,
        close_fds=True,
    )
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
    finally:
        process.kill()
        process.wait()
        os.close(main)
    return ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


@pytest.mark.envoy
def test_the_header_comes_first_and_the_bar_ends_full() -> None:
    screen = run_in_a_terminal("run", "labs/2-traffic")
    header = screen.index("lab 2-traffic: Canary release of the staff service")
    backend = screen.index("backend: embedded — Envoy")
    bars = list(re.finditer(r"canary-split\s+\S*\s*(\d+)/(\d+|\?) requests", screen))
    assert bars, screen
    assert header < backend < bars[0].start()
    last = bars[-1]
    assert last[1] == last[2], f"the last bar is not full: {last[0]!r}"
    assert re.search(r"risky \d+\.\d%", screen[last.start() :]), screen
    verdict = re.search(r"canary-split passed: risky got [\d.]+% \((\d+)/(\d+)", screen)
    assert verdict, screen
    assert verdict[2] == last[1]  # the bar's 100% is the requests the verdict counted


def test_the_estimate_stays_between_what_was_sent_and_the_cap() -> None:
    expected = {"safe": 0.9, "risky": 0.1}
    design = Design()
    test = SequentialSplitTest(expected, design)
    counts = {"safe": 0, "risky": 0}
    estimates = []
    for n in range(10, 2000, 10):
        counts = {"safe": n - n // 10, "risky": n // 10}  # exactly on target
        verdict = test.observe(counts)
        if verdict.outcome != "continue":
            break
        estimates.append((n, estimated_total(verdict, 3520)))
    assert estimates
    assert all(n < guess <= 3520 for n, guess in estimates)
    # a config that sits on its target decides soon after the estimate says it will
    final = estimates[-1][0] + 10
    assert abs(estimates[len(estimates) // 2][1] - final) < final
    assert focus_bucket(expected) == "risky"
    assert focus_bucket({"all": 1.0}) is None
