"""`kind: reachability`: what counts as served and refused, and its lab.yaml spelling."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from meshlab.backends.base import Outcome
from meshlab.checks.reachability import OTHER, REFUSED, SERVED, ReachabilitySpec, verdict_of


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        (Outcome(200, pod="staff-1"), SERVED),
        (Outcome(500, pod="staff-bad"), SERVED),  # the app answered: it was reached
        (
            Outcome(None, error="ConnectionResetError: [Errno 104] Connection reset by peer"),
            REFUSED,
        ),
        (Outcome(503, response_flags="UC"), REFUSED),  # a sidecar's plaintext dropped
        (Outcome(503, response_flags="UF,URX"), REFUSED),
        (Outcome(503, response_flags="UH"), OTHER),  # no healthy pod: neither
        (Outcome(404, response_flags="NR"), OTHER),  # no route: neither
        (Outcome(None, error="RemoteDisconnected: Remote end closed connection"), REFUSED),
        (Outcome(None, error="TimeoutError: timed out"), OTHER),
        (Outcome(None, error="could not resolve host 'nowhere': Name or service"), OTHER),
    ],
)
def test_verdicts(outcome: Outcome, verdict: str) -> None:
    assert verdict_of(outcome) == verdict


def spec(**fields: object) -> ReachabilitySpec:
    raw = {"name": "r", "kind": "reachability", "request": {"url": "http://a:8080/"}}
    return ReachabilitySpec.model_validate(raw | fields)


def test_spec() -> None:
    assert spec(expect="refused").requests == 10
    with pytest.raises(ValidationError):
        spec(expect="blocked")
    with pytest.raises(ValidationError):
        spec(expect="served", requests=0)
