"""The budgets a run spends while it runs: requests, wall time and memory (the input cannot
show them). The sampler asks before every batch how many requests may go; a "no" ends the
check "inconclusive: budget (...)", and the run goes on with the next check.

Time is kept by pacing, not by interrupting: a check's first batch is one request (its time
says how long one takes), later batches are cut to what fits in the time left. So a check
overruns its time by at most one request (at most the client's timeout), and a fault
`fixedDelay: 25s` costs a few requests, not hours.

Memory is the resident memory of meshlab and all its children (Envoy, the stand-ins), read
with psutil at most once a second. Not rlimits: RLIMIT_AS breaks Envoy (it reserves
gigabytes of address space it never touches), per-process limits do not bound 64 stand-ins
together, RLIMIT_RSS is ignored by Linux, and a process killed by a limit looks like a broken
backend (exit 3) instead of a budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import field

from meshlab.load.budgets import Budgets, flag_for
from meshlab.records import dataclass

MEMORY_EVERY_S = 1.0  # how often the memory budget is read (a /proc walk per child)


def tree_rss_mb() -> float:
    """Resident memory of this process and its descendants, in MiB (children that end while
    being read are skipped)."""
    import psutil

    me = psutil.Process()
    total = 0
    for process in (me, *me.children(recursive=True)):
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / (1024 * 1024)


def load_memory_reader() -> None:
    """Import what `tree_rss_mb` reads with (psutil, ~15 ms of a run) before the first check
    asks: the pipeline calls it in a thread while the deployment waits for its processes."""
    import psutil  # noqa: F401


@dataclass(frozen=True)
class BudgetStop:
    """Why a check may send no more: the words after "inconclusive: budget (", and the flag."""

    reason: str
    budget: str  # the Budgets field

    @property
    def flag(self) -> str:
        return flag_for(self.budget)


@dataclass
class RunLedger:
    """What the run has spent so far; one per run (per lab deployment under pytest)."""

    budgets: Budgets = field(default_factory=Budgets)
    clock: Callable[[], float] = time.monotonic
    memory_mb: Callable[[], float] = tree_rss_mb
    requests: int = 0
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def for_check(self) -> CheckBudget:
        """A fresh allowance for one check, its clock started now."""
        return CheckBudget(self, self.clock())


@dataclass
class CheckBudget:
    """One check's allowance, within what is left of the run's."""

    ledger: RunLedger
    started: float
    sent: int = 0
    _memory_read: float = -math.inf

    def allow(
        self, wanted: int, seconds_per_request: float | None
    ) -> tuple[int, BudgetStop | None]:
        """How many of `wanted` requests may go now (with the pace seen so far: None before
        the first), or 0 and why not."""
        stop = self._stop()
        if stop is not None:
            return 0, stop
        budgets, ledger = self.ledger.budgets, self.ledger
        count = min(
            wanted, budgets.check_requests - self.sent, budgets.run_requests - ledger.requests
        )
        if seconds_per_request is None:
            return min(count, 1), None  # learn the pace before a whole batch
        now = ledger.clock()
        left = min(
            budgets.check_seconds - (now - self.started),
            budgets.run_seconds - (now - ledger.started),
        )
        fits = int(left / seconds_per_request) if seconds_per_request > 0 else count
        return max(1, min(count, fits)), None

    def spent(self, count: int) -> None:
        self.sent += count
        self.ledger.requests += count

    def _stop(self) -> BudgetStop | None:
        budgets, ledger = self.ledger.budgets, self.ledger
        if self.sent >= budgets.check_requests:
            return BudgetStop(
                f"{self.sent} requests; the limit is {budgets.check_requests}", "check_requests"
            )
        if ledger.requests >= budgets.run_requests:
            return BudgetStop(
                f"{ledger.requests} requests in this run; the limit is {budgets.run_requests}",
                "run_requests",
            )
        now = ledger.clock()
        if now - self.started >= budgets.check_seconds:
            return BudgetStop(
                f"time: {now - self.started:.1f} s; the limit is {budgets.check_seconds:g} s",
                "check_seconds",
            )
        if now - ledger.started >= budgets.run_seconds:
            return BudgetStop(
                f"time: the run took {now - ledger.started:.1f} s; the limit is "
                f"{budgets.run_seconds:g} s",
                "run_seconds",
            )
        if now - self._memory_read >= MEMORY_EVERY_S:
            self._memory_read = now
            used = ledger.memory_mb()
            if used > budgets.memory_mb:
                return BudgetStop(
                    f"memory: {used:.0f} MB; the limit is {budgets.memory_mb} MB", "memory_mb"
                )
        return None
