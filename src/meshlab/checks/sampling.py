"""Sending a check's traffic and tallying what came back, shared by every check kind: the
split kind reads the buckets, a status or latency kind would read `statuses` and `latencies`.

Each sampler sends through its own session (fresh client state), so nothing one check's
traffic left behind, such as a hash cookie, routes another check's requests.

Every batch is asked of the check's budget first (meshlab.checks.ledger): when it says no,
sampling stops and the verdict is the sequential test's on what was seen. That test is
anytime-valid, so a pass or fail it reaches at the stop stands; anything else is
"inconclusive" with the budget's reason (`stopped`), which does not count as passed: cut
short, the test no longer bounds the chance of passing a wrong config (beta).
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace

from meshlab.backends.base import Outcome, Session
from meshlab.checks.base import CheckContext, ProgressUpdate
from meshlab.checks.ledger import BudgetStop
from meshlab.checks.stats import (
    SequentialSplitTest,
    SplitVerdict,
    anytime_interval,
    fixed_split_test,
    sequential_cap,
)
from meshlab.errors import BackendError
from meshlab.mesh.request import ProbeRequest


class Sampler:
    """Sends requests in batches through one session and tallies buckets (by a pod label),
    response flags, transport errors, pods, status codes and latencies."""

    def __init__(
        self,
        context: CheckContext,
        request: ProbeRequest,
        by: str,
        session: Session | None = None,
        bucket_of: Callable[[Outcome], str] | None = None,
    ) -> None:
        self.context = context
        self.request = request
        self.by = by
        # how an outcome is counted: by default the serving pod's `by` label (else its failure)
        self.bucket_of = bucket_of or (lambda outcome: outcome.bucket(by))
        self._session = session
        self.counts: Counter[str] = Counter()
        self.flags: dict[str, Counter[str]] = defaultdict(Counter)
        self.errors: Counter[str] = Counter()
        self.pods: Counter[str] = Counter()
        self.pod_labels: dict[str, dict[str, str]] = {}
        self.statuses: Counter[int | None] = Counter()  # None: no response at all
        self.latencies: list[float] = []  # seconds, of the requests that measured one
        self.stopped: BudgetStop | None = None  # why the budget ended sampling early
        self._seconds = 0.0  # wall time spent sending, for the budget's pace

    @property
    def sent(self) -> int:
        return sum(self.counts.values())

    def send(self, count: int) -> list[Outcome]:
        """Send up to `count` more requests as the budget allows, tally them, report
        progress; the outcomes too. Fewer than `count` only when `stopped` says why."""
        if self._session is None:
            self._session = self.context.session()
        outcomes: list[Outcome] = []
        while len(outcomes) < count and self.stopped is None:
            pace = self._seconds / self.sent if self.sent else None
            allowed, self.stopped = self.context.budget.allow(count - len(outcomes), pace)
            if allowed <= 0:
                break
            started = time.perf_counter()
            got = self._session.send(self.request, allowed)
            self._seconds += time.perf_counter() - started
            if len(got) != allowed:
                raise BackendError(
                    f"the backend returned {len(got)} outcomes for {allowed} requests"
                )
            self.context.budget.spent(allowed)
            for outcome in got:
                self.tally(outcome)
            outcomes += got
        return outcomes

    def report(self, expected_total: int | None, focus: str | None, done: bool = False) -> None:
        """Tell the progress display where this check stands."""
        count = self.counts.get(focus, 0) if focus is not None else 0
        total = self.sent if done else expected_total
        self.context.progress(ProgressUpdate(self.sent, total, focus, count, done))

    def tally(self, outcome: Outcome) -> None:
        bucket = self.bucket_of(outcome)
        self.counts[bucket] += 1
        self.statuses[outcome.status] += 1
        if outcome.latency is not None:
            self.latencies.append(outcome.latency)
        if outcome.failed:
            self.flags[bucket][outcome.response_flags] += 1
        if outcome.error:
            self.errors[outcome.error] += 1
        if outcome.pod is not None:
            self.pods[outcome.pod] += 1
            self.pod_labels.setdefault(outcome.pod, dict(outcome.labels))

    def restart(self) -> None:
        """Forget the tallies (the session stays): what follows is judged on its own."""
        self.counts.clear()
        self.flags.clear()
        self.errors.clear()
        self.pods.clear()
        self.pod_labels.clear()
        self.statuses.clear()
        self.latencies.clear()
        self._seconds = 0.0

    def close(self) -> None:
        """Drop the session's connections; the next send opens a fresh one."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def sequential(self, expected: dict[str, float]) -> SplitVerdict:
        """Batches until the sequential split test decides (or its cap, or the budget)."""
        design = replace(self.context.design, cap=sequential_cap(expected, self.context.design))
        test = SequentialSplitTest(expected, design)
        cap = min(design.cap, self.context.budget.ledger.budgets.check_requests)
        focus = focus_bucket(expected)
        estimate, next_estimate = None, 0.0
        try:
            while True:
                self.send(min(design.batch, design.cap - self.sent))
                look = test.observe(self.counts, intervals=False)  # go on, or stop?
                if look.outcome != "continue" or self.stopped is not None:
                    verdict = test.observe(self.counts)  # the same outcome, with its intervals
                    if verdict.outcome != "continue":
                        return verdict
                    return replace(verdict, outcome="inconclusive")
                if time.perf_counter() >= next_estimate:  # a display refreshes ~10 times/s
                    estimate = estimated_total(look, cap)
                    next_estimate = time.perf_counter() + ESTIMATE_EVERY_S
                self.report(estimate, focus)
        finally:
            self.report(None, focus, done=True)
            self.close()

    def fixed(self, expected: dict[str, float], n: int) -> SplitVerdict:
        """Exactly `n` requests, then the fixed-N split test; stopped early by the budget,
        the anytime-valid sequential test judges what was seen (a fixed-N test is only
        valid at the N fixed in advance)."""
        batch = max(self.context.design.batch, 50)
        focus = focus_bucket(expected)
        try:
            while (sent := self.sent) < n and self.stopped is None:
                self.send(min(batch, n - sent))
                self.report(n, focus)
        finally:
            self.report(None, focus, done=True)
            self.close()
        if self.stopped is None:
            return fixed_split_test(expected, self.counts, self.context.design)
        design = replace(self.context.design, cap=max(self.context.design.cap, self.sent + 1))
        verdict = SequentialSplitTest(expected, design).observe(self.counts)
        return (
            verdict if verdict.outcome != "continue" else replace(verdict, outcome="inconclusive")
        )


def focus_bucket(expected: dict[str, float]) -> str | None:
    """The bucket a reader watches: the smallest share configured to get traffic (the canary)."""
    shares = {bucket: share for bucket, share in expected.items() if 0 < share < 1}
    return min(shares, key=lambda b: shares[b]) if shares else None


ESTIMATE_EVERY_S = 0.1  # how often a sequential check works out its likely total


def estimated_total(verdict: SplitVerdict, cap: int) -> int:
    """How many requests the sequential test will likely have sent when it decides, from where
    it stands: a bucket's interval narrows about as 1/sqrt(n), and it must fit between the
    observed share and the nearer band edge (or leave the band) before the test stops."""
    n, design = verdict.n, verdict.design
    needed = n + design.batch
    for bucket in verdict.buckets:
        if bucket.status != "undecided" or not 0 < bucket.expected < 1 or n == 0:
            continue
        # the 1 - beta interval is the one that must fit inside the band for a pass
        lo, hi = anytime_interval(bucket.expected, bucket.count, n, design.beta, design)
        half = (hi - lo) / 2
        low, high = bucket.band
        margin = max(min(bucket.observed - low, high - bucket.observed), half / 4)
        needed = max(needed, math.ceil(n * (half / margin) ** 2))
    return min(max(needed, n + 1), cap)
