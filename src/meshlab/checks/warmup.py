"""The requests a share-judging check sends before the judged ones, when the configuration
ejects broken pods (outlierDetection, mesh/ejection_forecast.py).

Envoy ejects a broken pod only after it has answered its run of errors; from then on, for
the ejection's length, the cluster's traffic goes to the other pods. `configured` predicts
that steady state, so the check first meets the errors: one request at a time (as the
ejection check does) until the broken pods have answered them, or a bounded number of
requests; then it pauses so Envoy's main thread has ejected them, and the tallies start
afresh. Whether and when the warm-up stops depends only on its own requests, so the split
test that follows sees fresh, independent requests and keeps its error rates.
"""

from __future__ import annotations

import time

from meshlab.checks.sampling import Sampler
from meshlab.mesh.expect import ExpectedSplit
from meshlab.records import dataclass

SETTLE_S = 0.05  # pause after the last error, so Envoy's main thread has ejected the host
# With LEAST_REQUEST over P pods a given pod is picked about once in P requests: waiting for
# E errors takes about E x P requests; ten times that is a generous, bounded warm-up.
PATIENCE = 10
MINIMUM = 50


@dataclass(frozen=True)
class WarmUp:
    """What the warm-up sent and met, for the report (none of it is judged)."""

    sent: int
    errors: int
    wanted: int
    pods: tuple[str, ...]
    counts: dict[str, int]

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.sent,
            "errors": self.errors,
            "errors_before_ejection": self.wanted,
            "ejected": list(self.pods),
            "counts": self.counts,
        }

    def line(self) -> str:
        pods = ", ".join(self.pods)
        met = (
            f"{self.errors} error(s), as outlierDetection allows before ejecting {pods}"
            if self.errors >= self.wanted
            else f"only {self.errors} of the {self.wanted} error(s) expected from {pods}"
        )
        return f"  warm-up (not judged): {self.sent} request(s) one at a time, {met}"


def warmup_limit(configured: ExpectedSplit) -> int:
    """The most requests the warm-up sends (0: the configuration ejects nothing)."""
    if not configured.ejections:
        return 0
    errors = sum(f.errors for f in configured.ejections)
    return max(MINIMUM, PATIENCE * errors * max(1, len(configured.pods)))


def warm_up(run: Sampler, configured: ExpectedSplit) -> WarmUp | None:
    """Meet the errors the configured ejections allow, then restart the tallies."""
    limit = warmup_limit(configured)
    if not limit:
        return None
    wanted = sum(f.errors for f in configured.ejections)
    statuses = {s for f in configured.ejections for s in f.statuses}
    errors = 0
    while errors < wanted and run.sent < limit and run.stopped is None:
        got = run.send(1)
        errors += sum(1 for outcome in got if outcome.status in statuses)
    time.sleep(SETTLE_S)
    pods = tuple(p for f in configured.ejections for p in f.ejected)
    done = WarmUp(run.sent, errors, wanted, pods, dict(run.counts))
    run.restart()
    return done
