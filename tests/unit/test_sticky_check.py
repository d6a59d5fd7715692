"""`kind: sticky` without Envoy: its schema, its design numbers (verified by simulation),
what `configured` knows of hashing, and the consistent-hash translation details."""

from __future__ import annotations

import math
import random
import shutil
import textwrap
from pathlib import Path

import pytest

from meshlab.backends.fake import FakeBackend, weighted_pods
from meshlab.checks import load_checked_lab
from meshlab.checks.hashing import MAX_KEY_SHARE, one_key_requests, sticky_design
from meshlab.checks.stats import Design
from meshlab.errors import InputError
from meshlab.load.manifests import load_manifests
from meshlab.mesh.expect import carries_key, configured_split
from meshlab.mesh.model import HashPolicyPlan
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import ProbeRequest
from meshlab.pipeline import run_lab
from meshlab.report.page import render_page

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "labs" / "2-traffic-stickiness"
DATA = ROOT / "tests" / "data" / "mesh"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    shutil.copytree(LAB, tmp_path / "lab", ignore=shutil.ignore_patterns("*.py"))
    return tmp_path / "lab"


def with_check(lab: Path, check: str) -> Path:
    text = (lab / "lab.yaml").read_text()
    head = text[: text.index("checks:\n")]
    (lab / "lab.yaml").write_text(head + "checks:\n" + textwrap.dedent(check))
    return lab


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("{}", "key names one place for the key"),
        ("{header: a, cookie: b}", "not header and cookie"),
        ("{header: 'x y'}", "'x y' is not a header, cookie or query parameter name"),
    ],
)
def test_a_key_names_one_place(lab: Path, key: str, said: str) -> None:
    with_check(
        lab,
        f"""\
        - name: s
          kind: sticky
          request: {{url: "{URL}"}}
          key: {key}
        """,
    )
    with pytest.raises(InputError) as caught:
        load_checked_lab(lab)
    assert said in str(caught.value)
    assert caught.value.location is not None


def test_a_key_fixed_in_the_request_is_refused(lab: Path) -> None:
    with_check(
        lab,
        f"""\
        - name: s
          kind: sticky
          request: {{url: "{URL}", headers: {{X-MyVal: a}}}}
          key: {{header: x-myval}}
        """,
    )
    with pytest.raises(InputError, match=r"remove it from request\.headers"):
        load_checked_lab(lab)


def test_numbers_over_the_budget_are_refused_before_start(lab: Path) -> None:
    with_check(
        lab,
        f"""\
        - name: s
          kind: sticky
          request: {{url: "{URL}"}}
          key: {{header: x-myval}}
          keys: 1000
          per_key: 1000
        """,
    )
    with pytest.raises(InputError, match="asks for 1,000,000 requests") as caught:
        run_lab(lab, backend=FakeBackend(weighted_pods({"safe": 1})))
    assert caught.value.location is not None
    assert caught.value.location.line == 8  # keys:


def test_the_design_meets_alpha_and_beta() -> None:
    design = Design()
    numbers = sticky_design(design)
    assert (numbers.keys, numbers.per_key) == (40, 3)
    assert numbers.spread_alpha <= design.alpha  # all keys on one pod, for a correct hash
    assert numbers.miss_beta <= design.beta  # a balancer moving 10% of repeats passes
    assert one_key_requests(design) == 67  # 0.9 ** 66 <= 1e-3
    # a lab's own numbers are kept, and the stated rates follow them
    assert sticky_design(design, keys=5, per_key=2).miss_beta == pytest.approx(0.9**5)


def test_simulated_error_rates_stay_under_the_stated_bounds() -> None:
    """At numbers small enough to see the events: keys placed by a hash skewed to the worst
    share allowed (MAX_KEY_SHARE), and a balancer that repeats a key's pod with chance 0.9."""
    rng = random.Random(13)
    design = sticky_design(Design(), keys=6, per_key=2)
    trials = 20000
    one_pod = sum(
        len({rng.random() < MAX_KEY_SHARE for _ in range(design.keys)}) == 1 for _ in range(trials)
    )
    assert one_pod / trials <= design.spread_alpha  # 0.7^6 + 0.3^6 <= 0.7^5
    looked_sticky = sum(
        all(rng.random() < 0.9 for _ in range(design.keys * (design.per_key - 1)))
        for _ in range(trials)
    )
    bound = design.miss_beta
    assert looked_sticky / trials <= bound + 4 * math.sqrt(bound / trials)


def test_a_balancer_that_is_not_sticky_fails_on_the_fake_backend(lab: Path) -> None:
    result = run_lab(lab, backend=FakeBackend(weighted_pods({"safe": 50, "risky": 50}), 3))
    [sticky] = result.results
    assert sticky.outcome == "fail"
    assert "not sticky" in sticky.message.splitlines()[0]


@pytest.mark.parametrize(
    ("policy", "request_", "carried"),
    [
        (HashPolicyPlan("header", "X-MyVal"), ProbeRequest(URL, headers={"x-myval": "a"}), True),
        (HashPolicyPlan("header", "x-myval"), ProbeRequest(URL), False),
        (HashPolicyPlan("query_parameter", "u"), ProbeRequest(URL + "?u=1"), True),
        (HashPolicyPlan("query_parameter", "u"), ProbeRequest(URL + "?user=1"), False),
        (HashPolicyPlan("cookie", "c"), ProbeRequest(URL, headers={"Cookie": "a=1; c=2"}), True),
        (HashPolicyPlan("cookie", "c"), ProbeRequest(URL), False),
        (HashPolicyPlan("cookie", "c", ttl_s=0.0), ProbeRequest(URL), True),  # Envoy sets it
        (HashPolicyPlan("source_ip"), ProbeRequest(URL), True),
    ],
)
def test_which_requests_carry_the_hash_key(
    policy: HashPolicyPlan, request_: ProbeRequest, carried: bool
) -> None:
    assert carries_key(policy, request_) is carried


def test_configured_knows_the_hash_and_the_pods_it_can_reach() -> None:
    plan = build_plan(load_manifests([DATA / "apps.yaml", DATA / "ring-hash.yaml"]))
    keyed = ProbeRequest(URL, headers={"x-user": "alice"})
    expected = configured_split(plan, keyed, "version")
    assert expected.shares == {"safe": 0.5, "risky": 0.5}  # over many keys
    assert expected.hashed_on(keyed) == HashPolicyPlan("header", "x-user")
    assert expected.hashed_on(ProbeRequest(URL)) is None
    assert len(expected.pods) == 2
    assert expected.hash_source is not None
    assert "ring-hash.yaml" in str(expected.hash_source)


def hashing(tmp_path: Path, consistent_hash: str) -> dict[str, object]:
    rule = tmp_path / "dr.yaml"
    rule.write_text(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: s}\n"
        "spec:\n  host: fleetman-staff-service\n  trafficPolicy:\n    loadBalancer:\n"
        f"      consistentHash: {consistent_hash}\n"
    )
    plan = build_plan(load_manifests([DATA / "apps.yaml", rule]))
    [cluster] = [c for c in plan.clusters.values() if "staff" in c.name]
    return {"lb": cluster.lb_policy, "size": cluster.hash_table_size}


@pytest.mark.parametrize(
    ("consistent_hash", "lb", "size"),
    [
        # cluster_traffic_policy.go ApplyRingHashLoadBalancer
        ("{httpHeaderName: u}", "RING_HASH", 1024),
        ("{httpHeaderName: u, minimumRingSize: 16}", "RING_HASH", 16),
        ("{httpHeaderName: u, ringHash: {}}", "RING_HASH", None),
        ("{httpHeaderName: u, ringHash: {minimumRingSize: 64}}", "RING_HASH", 64),
        ("{httpHeaderName: u, maglev: {tableSize: 65537}}", "MAGLEV", 65537),
    ],
)
def test_hash_algorithm_and_size_as_istiod_writes_them(
    tmp_path: Path, consistent_hash: str, lb: str, size: int | None
) -> None:
    assert hashing(tmp_path, consistent_hash) == {"lb": lb, "size": size}


@pytest.mark.parametrize(
    ("consistent_hash", "said"),
    [
        ("{httpHeaderName: u, useSourceIp: true}", "one hash key, not httpHeaderName and"),
        ("{useSourceIp: true, maglev: {tableSize: 65536}}", "must be a prime number"),
        ("{useSourceIp: true, maglev: {}}", "tableSize must be set for maglev"),
        ("{useSourceIp: true, minimumRingSize: 8, ringHash: {}}", "only one of minimumRingSize"),
    ],
)
def test_hash_settings_istio_refuses_are_refused(
    tmp_path: Path, consistent_hash: str, said: str
) -> None:
    with pytest.raises(InputError, match=said):
        hashing(tmp_path, consistent_hash)


def test_a_split_on_a_hashing_route_that_moves_fails_and_its_page_says_why(lab: Path) -> None:
    """`expect: configured` with the key in the request: one key must stay on one pod (the
    fake backend balances without hashing, as a broken mesh would)."""
    with_check(
        lab,
        f"""\
        - name: one-user
          kind: split
          request: {{url: "{URL}", headers: {{x-myval: alice}}}}
        """,
    )
    report = run_lab(lab, backend=FakeBackend(weighted_pods({"safe": 50, "risky": 50}), 5))
    [split] = report.results
    assert split.outcome == "fail"
    assert split.requests == 67
    first = split.message.splitlines()[0]
    assert "the route hashes on header x-myval (DestinationRule" in first
    assert "they reached" in first
    page = render_page(report.model(), "r.json")
    assert "carrying one hash key" in page
