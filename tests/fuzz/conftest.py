"""Hypothesis profiles for the fuzz tests: a bounded run in the suite, a long one in
`nox -s fuzz` (MESHLAB_FUZZ_PROFILE=fuzz; MESHLAB_FUZZ_EXAMPLES sets how many examples)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

_COMMON = {
    "deadline": None,  # a hang is caught by the per-example alarm, not by timing noise
    "database": None,  # nothing written into the repository
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,  # a failure prints the @reproduce_failure line to replay it
}
# ~100 ms an example (lab 2 loaded, planned, analysed, rendered): the suite's run is ~10 s.
# No shrinking in the suite (it can take minutes at this speed): a failure prints its
# @reproduce_failure blob, and `nox -s fuzz` shrinks.
_NO_SHRINK = tuple(p for p in Phase if p != Phase.shrink)
settings.register_profile("suite", max_examples=100, derandomize=True, phases=_NO_SHRINK, **_COMMON)
settings.register_profile(
    "fuzz", max_examples=int(os.environ.get("MESHLAB_FUZZ_EXAMPLES", "5000")), **_COMMON
)
settings.load_profile(os.environ.get("MESHLAB_FUZZ_PROFILE", "suite"))
