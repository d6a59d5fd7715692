"""`kind: sticky` and split's one-key verdict on a real Envoy: consistent hashing keyed on a
header or an Envoy-set cookie sticks, no hashing does not, and `expect: configured` on a
hashing route passes a correct rule (docs/statistics.md, "The sticky test")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.checks import CheckResult
from meshlab.pipeline import run_lab
from staff_rules import HOST, both, destination_rule

pytestmark = pytest.mark.envoy

DATA = Path(__file__).resolve().parents[1] / "data" / "mesh"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"

COOKIE_TTL = destination_rule(
    "  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
    "        httpCookie: {name: user, ttl: 0s}\n"
)


def run(
    tmp_path: Path, backend: EmbeddedBackend, rules: str | None, checks: str
) -> list[CheckResult]:
    """A lab of the two staff builds, `rules` (a tests/data/mesh file, or YAML text)."""
    lab = tmp_path / "lab"
    lab.mkdir(parents=True)
    shutil.copy(DATA / "apps.yaml", lab / "apps.yaml")
    manifests = ["apps.yaml"]
    if rules is not None:
        text = (DATA / rules).read_text() if rules.endswith(".yaml") else rules
        (lab / "rules.yaml").write_text(text)
        manifests.append("rules.yaml")
    (lab / "lab.yaml").write_text(f"title: sticky\nmanifests: {manifests}\nchecks:\n{checks}")
    return run_lab(lab, backend=backend).results


def sticky(key: str) -> str:
    return f"""\
  - name: sticky
    kind: sticky
    request: {{url: "{URL}"}}
    key: {key}
"""


def test_header_hashing_is_sticky_and_spreads(tmp_path: Path, backend: EmbeddedBackend) -> None:
    [result] = run(tmp_path, backend, "ring-hash.yaml", sticky("{header: x-user}"))
    assert result.outcome == "pass", result.message
    users = result.details["users"]
    assert len(users) == result.details["keys"] >= 2
    assert all(len(u["reached"]) == 1 for u in users)
    assert len({next(iter(u["reached"])) for u in users}) == 2  # both pods got keys


def test_no_hashing_is_not_sticky(tmp_path: Path, backend: EmbeddedBackend) -> None:
    [result] = run(tmp_path, backend, None, sticky("{header: x-user}"))
    assert result.outcome == "fail"
    first = result.message.splitlines()[0]
    assert "not sticky" in first
    assert "key x-user=" in first
    assert "staff-service" in first  # the pods that key reached are named
    assert "has no consistentHash" in result.message


def test_an_envoy_set_cookie_sticks_across_a_session(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    [result] = run(tmp_path, backend, COOKIE_TTL, sticky("{cookie: user}"))
    assert result.outcome == "pass", result.message
    keys = [u["key"] for u in result.details["users"]]
    assert "(none set)" not in keys  # each user's key is the cookie Envoy set
    assert len(set(keys)) == len(keys)  # a fresh session per user: a cookie of its own


def test_split_configured_on_a_hashing_route_judges_one_key(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    """The course's stickiness demo under `expect: configured`: one key lands on one pod,
    which the 50/50 shares (over many keys) would fail every time."""
    checks = f"""\
  - name: one-user
    kind: split
    request: {{url: "{URL}", headers: {{x-user: alice}}}}
  - name: cookie-user
    kind: split
    request: {{url: "{URL}"}}
"""
    one, _ = run(tmp_path, backend, "ring-hash.yaml", checks)
    assert one.outcome == "pass", one.message
    assert one.details["method"] == "one-key (hashed route)"
    assert len(one.observed) == 1
    _, cookie = run(tmp_path / "c", backend, COOKIE_TTL, checks)
    assert cookie.outcome == "pass", cookie.message
    assert "cookie user" in cookie.message


HASH_AND_ABORT = both(
    "  - fault:\n      abort: {httpStatus: 503, percentage: {value: 50}}\n"
    f"    route:\n    - destination: {{host: {HOST}}}\n",
    "  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: x-user}\n",
)


def test_an_abort_fault_on_a_hashing_route_is_not_a_moved_key(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    """The fault aborts per request, hashed or not: the one key's other requests still all
    reach one pod, and configured passes."""
    checks = f"""\
  - name: one-user
    kind: split
    request: {{url: "{URL}", headers: {{x-user: alice}}}}
"""
    [one] = run(tmp_path, backend, HASH_AND_ABORT, checks)
    assert one.outcome == "pass", one.message
    assert "HTTP 503" in one.observed
    assert len(one.observed) == 2
    assert "the requests the fault did not abort went to" in one.message
