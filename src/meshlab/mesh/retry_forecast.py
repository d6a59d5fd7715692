"""Which answers a route's retry policy takes on to another pod, and how often a retried
request still ends on a failing one: what `expect: configured` predicts at the first hop
(mesh/expect.py) and behind it (mesh/chain_answers.py)."""

from __future__ import annotations

from meshlab.mesh.model import RetryPlan


def retries_status(retry: RetryPlan, status: int) -> bool:
    """Whether Envoy's retry policy retries an upstream answer of `status` (envoy
    router/retry_state_impl.cc wouldRetryFromHeaders: `5xx` any 5xx, `gateway-error`
    502/503/504, `retriable-4xx` 409, `retriable-status-codes` the listed codes). Istio's
    default policy lists retriable-status-codes with no codes (retry.go defaultRetryOn,
    RetriableStatusCodes unset), so by default no answered status is retried."""
    tokens = {t.strip() for t in retry.retry_on.split(",")}
    return (
        ("5xx" in tokens and status >= 500)
        or ("gateway-error" in tokens and status in (502, 503, 504))
        or ("retriable-4xx" in tokens and status == 409)
        or ("retriable-status-codes" in tokens and status in retry.retriable_status_codes)
    )


def still_failing(retry: RetryPlan | None, status: int, broken: float, hashed: bool) -> float:
    """The chance a request that first met a broken pod still ends on one after the retries.

    Each retry picks a host again: with the previous_hosts predicate (retry.go, unless the
    route hashes on one destination) a host already tried is rejected and picked again, up
    to host_selection_retry_max_attempts (5) more times, so a retry lands on a broken pod
    about `broken`**6 of the time (exact with one broken pod; with more, the retry may meet
    another broken one: a residual the split test's band absorbs); without the predicate,
    `broken` of the time, and the same pod again on a route that hashes (the key picks it).
    Load-balancer details beyond that are below the band (delta)."""
    if retry is None or retry.attempts <= 0 or not retries_status(retry, status):
        return 1.0
    per_retry = broken**6 if retry.previous_hosts else (1.0 if hashed else broken)
    return float(per_retry**retry.attempts)
