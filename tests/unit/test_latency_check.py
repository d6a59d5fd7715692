"""`kind: latency` without Envoy: its schema, the delayed/prompt threshold, what `expect:
configured` reads off the route's fault delay, and the percentile bounds."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from meshlab.backends.base import Outcome
from meshlab.backends.fake import FakeBackend, Responder
from meshlab.checks import CheckResult
from meshlab.checks.latency import (
    DELAYED,
    PROMPT,
    UNMEASURED,
    LatencySpec,
    bound_failures,
    configured_latency,
    delay_of,
    latency_bucketer,
    percentile,
)
from meshlab.load.manifests import load_manifests
from meshlab.mesh.expect import ExpectedSplit, configured_split
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import ProbeRequest
from meshlab.pipeline import run_lab
from staff_rules import HOST, virtual_service

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "tests" / "data" / "mesh" / "apps.yaml"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


def spec(**fields: Any) -> LatencySpec:
    return LatencySpec.model_validate(
        {"name": "lat", "kind": "latency", "request": {"url": URL}} | fields
    )


def configured(tmp_path: Path, fault: str, timeout: str = "") -> ExpectedSplit:
    rules = tmp_path / "rules.yaml"
    route = f"  - route:\n    - destination: {{host: {HOST}}}\n"
    rules.write_text(
        virtual_service(route + "".join(f"    {line}\n" for line in (fault, timeout) if line))
    )
    plan = build_plan(load_manifests([APPS, rules], "default"), "default")
    return configured_split(plan, ProbeRequest(URL), "version")


def test_a_delay_share_is_configured_independently_of_an_abort(tmp_path: Path) -> None:
    expected = configured(
        tmp_path,
        "fault: {delay: {fixedDelay: 0.3s, percentage: {value: 40}}, "
        "abort: {httpStatus: 503, percentage: {value: 50}}}",
        "timeout: 0.1s",
    )
    assert expected.delay_s == pytest.approx(0.3)
    assert expected.delay_share == pytest.approx(0.4)  # not 0.4 x 0.5: drawn independently
    assert expected.timeout_s == pytest.approx(0.1)
    seen = configured_latency(expected, 0.3)
    assert seen.shares == pytest.approx({DELAYED: 0.4, PROMPT: 0.6})
    [source] = seen.sources[DELAYED]
    assert source.what.endswith("fault.delay")
    assert source.location is not None


def test_the_deprecated_integer_percent_is_read(tmp_path: Path) -> None:
    expected = configured(tmp_path, "fault: {delay: {fixedDelay: 1s, percent: 30}}")
    assert expected.delay_share == pytest.approx(0.3)


def test_no_delay_predicts_all_prompt(tmp_path: Path) -> None:
    expected = configured(tmp_path, "")
    assert expected.delay_s is None
    assert configured_latency(expected, 0.3).shares == {PROMPT: 1.0}
    assert delay_of(spec(), expected) is None  # the kind then says there is nothing to judge
    assert delay_of(spec(delay="250ms"), expected) == pytest.approx(0.25)


def test_a_configured_delay_below_the_threshold_of_the_stated_one_is_prompt(
    tmp_path: Path,
) -> None:
    expected = configured(tmp_path, "fault: {delay: {fixedDelay: 0.1s, percentage: {value: 100}}}")
    assert configured_latency(expected, 0.3).shares == {PROMPT: 1.0}
    assert configured_latency(expected, 0.1).shares == {DELAYED: 1.0}


def test_the_threshold_is_eight_tenths_of_the_delay() -> None:
    seen: list[float] = []
    bucket = latency_bucketer(0.3, seen)
    assert bucket(Outcome(200, latency=0.30)) == DELAYED
    assert bucket(Outcome(200, latency=0.241)) == DELAYED
    assert bucket(Outcome(200, latency=0.239)) == PROMPT
    assert bucket(Outcome(None, latency=0.5)) == DELAYED  # a delayed request that then failed
    assert bucket(Outcome(200)) == UNMEASURED
    assert seen == [0.30, 0.241, 0.239, 0.5]


def test_percentiles_and_bounds() -> None:
    values = [0.01 * i for i in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(0.50)
    assert percentile(values, 99) == pytest.approx(0.99)
    assert bound_failures({"p50": "600ms"}, values) == []
    [broken] = bound_failures({"p99": "500ms"}, values)
    assert "p99 latency 990ms is over the bound 500ms" in broken
    assert bound_failures({"p50": "1s"}, []) != []


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"delay": "50ms"}, "outside 100ms..10s"),
        ({"delay": "1 second"}, "is not a duration"),
        ({"within": {"p42": "1s"}}, "not a percentile"),
        ({"within": {"p50": "soon"}}, "within.p50"),
        ({"expect": {"slow": 50}}, "not a bucket of the latency kind"),
    ],
)
def test_mistakes_are_explained(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as raised:
        spec(**fields)
    assert words in str(raised.value)


def test_a_valid_spec() -> None:
    parsed = spec(delay="300ms", expect={"delayed": 50, "prompt": 50}, within={"p99": "2s"})
    assert parsed.by == "delay"
    assert parsed.hop is None


def test_fault_percentages_are_truncated_per_million_as_istiod_does(tmp_path: Path) -> None:
    """route.go translatePercentToFractionalPercent: uint32(value * 10000) truncates."""
    from meshlab.backends.embedded.envoy.routes import virtual_host
    from meshlab.mesh.matching import virtual_host_for

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        virtual_service(
            "  - fault:\n"
            "      delay: {fixedDelay: 0.3s, percentage: {value: 0.57}}\n"
            "      abort: {httpStatus: 503, percentage: {value: 50}}\n"
            f"    route:\n    - destination: {{host: {HOST}}}\n"
        )
    )
    plan = build_plan(load_manifests([APPS, rules], "default"), "default")
    vhost = virtual_host_for(plan, "fleetman-staff-service", 8080)
    assert vhost is not None
    [route] = virtual_host(vhost)["routes"]
    fault = route["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["delay"]["percentage"] == {"numerator": 5699, "denominator": "MILLION"}
    assert fault["delay"]["fixed_delay"] == "0.300s"
    assert fault["abort"]["percentage"] == {"numerator": 500000, "denominator": "MILLION"}


def half_delayed(request: ProbeRequest, rng: random.Random) -> Outcome:
    """A pod behind a 50% delay of 0.3 s: delayed requests take the delay, others 5 ms."""
    latency = 0.3 if rng.random() < 0.5 else 0.005
    return Outcome(status=200, pod="staff-1", labels={"version": "safe"}, latency=latency)


def run_checks(tmp_path: Path, checks: str, responder: Responder) -> list[CheckResult]:
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "apps.yaml").write_text(APPS.read_text())
    (lab / "lab.yaml").write_text(f"title: t\nmanifests: [apps.yaml]\nchecks:\n{checks}")
    return list(run_lab(lab, backend=FakeBackend(responder)).results)


def test_the_kind_judges_shares_and_bounds(tmp_path: Path) -> None:
    checks = "".join(
        f"  - name: c{i}\n    kind: latency\n    request: {{url: '{URL}'}}\n"
        f"    delay: 300ms\n{extra}"
        for i, extra in enumerate(
            [
                "    expect: {delayed: 50, prompt: 50}\n    within: {p99: 1s}\n",
                "    expect: {delayed: 50, prompt: 50}\n    within: {p90: 100ms}\n",
                "    expect: {prompt: 100}\n",
            ]
        )
    )
    ok, bound, wrong = run_checks(tmp_path, checks, half_delayed)
    assert ok.outcome == "pass", ok.message
    assert "latency seen: p50" in ok.message
    assert ok.details["latency"]["threshold_s"] == pytest.approx(0.24)
    assert bound.outcome == "fail"
    assert "p90 latency 300ms is over the bound 100ms" in bound.message
    assert wrong.outcome == "fail"


def test_without_a_delay_to_judge_by_the_check_says_so_and_sends_nothing(
    tmp_path: Path,
) -> None:
    checks = f"  - name: slow\n    kind: latency\n    request: {{url: '{URL}'}}\n"
    [result] = run_checks(tmp_path, checks, half_delayed)
    assert result.outcome == "error"
    assert result.requests == 0
    assert "injects no fault delay" in result.message
    assert "delay: 300ms" in result.message
