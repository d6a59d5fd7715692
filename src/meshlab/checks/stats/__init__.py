"""Decide whether observed per-destination counts match the configured traffic shares.

Why statistics at all: Envoy draws a fresh random value for every HTTP request and picks the
weighted destination from it, so the counts per destination are a multinomial sample. Comparing
them to the weights with a fixed tolerance (Istio's own "within ±10 of 100") either flakes on a
correct config or waves a wrong one through. This module makes both error rates explicit:

* ``alpha``: chance that a *correct* config fails one check (a false failure, i.e. a flaky grade);
* ``beta``: chance that a config whose share is off by ``delta`` or more passes (a miss).

Default mode is sequential: the caller sends requests in batches, calls
:meth:`SequentialSplitTest.observe` with the cumulative counts after each batch, and stops as soon
as the verdict is not ``"continue"``. Both error bounds hold however often the caller looks
(Ville's inequality for the mixture martingale below), so peeking costs nothing. A fixed-N mode
(:func:`fixed_split_test`, sized by :func:`fixed_sample_size`) exists for users who want a
predetermined number of requests.

The module is pure (no I/O, no other meshlab imports) and needs only the standard library
(special.py: the beta and binomial functions, tested against scipy).
"""

from __future__ import annotations

from meshlab.checks.stats.design import (
    DEFAULT_DESIGN,
    FIXED_METHOD,
    SEQUENTIAL_METHOD,
    BucketVerdict,
    Design,
    Outcome,
    SplitVerdict,
    Status,
    normalise_shares,
    share_band,
)
from meshlab.checks.stats.fixed import (
    fixed_sample_size,
    fixed_sample_size_estimate,
    fixed_split_test,
)
from meshlab.checks.stats.planning import (
    anytime_interval,
    expected_requests,
    sequential_cap,
    sequential_cap_estimate,
)
from meshlab.checks.stats.sequential import SequentialSplitTest

__all__ = [
    "DEFAULT_DESIGN",
    "FIXED_METHOD",
    "SEQUENTIAL_METHOD",
    "BucketVerdict",
    "Design",
    "Outcome",
    "SequentialSplitTest",
    "SplitVerdict",
    "Status",
    "anytime_interval",
    "expected_requests",
    "fixed_sample_size",
    "fixed_sample_size_estimate",
    "fixed_split_test",
    "normalise_shares",
    "sequential_cap",
    "sequential_cap_estimate",
    "share_band",
]
