"""Watching Envoy and the stand-ins while a lab runs, so that a backend fault ends the run as
one (BackendError, exit 3) instead of being scored as the student's failed check.

A dead stand-in host (and so every pod on it, see `hosts.py`) shows up to the client as
Envoy's 503 (`UF`, `UC`...), a dead Envoy as a refused connection, a stopped (SIGSTOP) one as
a request that never ends: each looks like traffic a lab could produce. So after every batch
the process group is polled (a `waitpid` per child, microseconds), and when a request found no
answer or timed out, each process's state and Envoy's admin endpoint are asked too.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from http.client import HTTPException
from pathlib import Path

from meshlab.backends.base import Outcome
from meshlab.backends.embedded.client import get
from meshlab.backends.embedded.processes import ManagedProcess
from meshlab.errors import BackendError

# A request through Envoy to a stand-in on loopback takes milliseconds (lab 2, 1,000 requests
# measured on the 2-core machine while other test runs loaded it: median 7 ms, slowest 50 ms).
# 5 s is a hundred times the slowest, yet lets a stopped Envoy end the run within about 8 s
# (5 s + the checks below).
# A lab's own fault delay is added to it (`request_timeout`).
BASE_REQUEST_TIMEOUT = 5.0
ADMIN_TIMEOUT = 2.0  # Envoy's admin answers /ready in well under 10 ms when it runs
DEATH_GRACE = 0.05  # a refused connection can be seen a moment before the exit is
# Envoy's flags for "no connection to the upstream": what a stand-in that died looks like
_CONNECTION_FLAGS = frozenset({"UF", "UC", "UH", "URX", "UPE"})


def request_timeout(longest_delay_s: float) -> float:
    """The client's timeout per request: the base, plus the longest delay a lab injects."""
    return BASE_REQUEST_TIMEOUT + max(longest_delay_s, 0.0)


class Watchdog:
    """Turns a dead, stopped or mute backend process into a BackendError naming it (and, for
    a stand-in host, every pod that went down with it)."""

    def __init__(self, processes: Sequence[ManagedProcess], envoy: ManagedProcess, admin_url: str):
        self.processes = list(processes)
        self.envoy = envoy
        self.admin_url = admin_url

    def after_batch(self, outcomes: Sequence[Outcome]) -> None:
        """Raise if a process died; when the batch saw no answer, also if one is stopped."""
        suspicious = any(_looks_like_a_fault(o) for o in outcomes)
        self.raise_if_dead()
        if suspicious:
            time.sleep(DEATH_GRACE)
            self.raise_if_dead()
            self.raise_if_stopped()

    def after_timeout(self) -> None:
        """A request timed out: was it the lab (a delay) or the backend (stopped, mute)?"""
        self.raise_if_dead()
        self.raise_if_stopped()
        try:
            get(f"{self.admin_url}/ready", ADMIN_TIMEOUT)
        except (OSError, HTTPException) as exc:
            self.raise_if_dead()
            raise self._fault(
                self.envoy, f"stopped answering (its admin endpoint: {type(exc).__name__})"
            ) from None

    def raise_if_dead(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise self._fault(process, "died during the run")

    def raise_if_stopped(self) -> None:
        for process in self.processes:
            if process_state(process.pid) in {"T", "t"}:
                raise self._fault(process, "is stopped (SIGSTOP or a debugger) during the run")

    def _fault(self, process: ManagedProcess, what: str) -> BackendError:
        return BackendError(
            f"backend fault, not the lab's: {process.failure(what)}\n"
            "  the checks of this run are void; run it again"
        )


def _looks_like_a_fault(outcome: Outcome) -> bool:
    if outcome.status is None:
        return True
    flags = set(outcome.response_flags.split(","))
    return outcome.status >= 500 and bool(flags & _CONNECTION_FLAGS)


def process_state(pid: int) -> str | None:
    """The one-letter state Linux shows for `pid` (`R`, `S`, `T` stopped...); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the name, in parentheses, may hold spaces
    return fields[0] if fields else None
