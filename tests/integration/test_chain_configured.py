"""`expect: configured` sees what lies behind the first hop, on a real Envoy and the
fleetman chain (browser -> gateway -> webapp -> api-gateway -> staff-service): an abort deep
in the chain comes back as the status the apps make of it, and a route timeout cuts the
answers that a fault delay behind it holds back (504), drawn per request (issue 13:
`configured` learns faults and timeouts; a correct configuration never fails)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab_runs import check_results
from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.checks import CheckResult
from staff_rules import HOST, virtual_service

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
FLEETMAN = ROOT / "labs" / "5-fault-injection"
DRIVER = "http://192.168.49.2:31380/api/vehicles/driver/City%20Truck"
PAGE = "http://192.168.49.2:31380/"
GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: webapp}
spec:
  hosts: ["*"]
  gateways: [ingress]
  http:
  - route:
    - destination: {host: fleetman-webapp}
TIMEOUT---
"""


def run(
    tmp_path: Path, backend: EmbeddedBackend, timeout: str, fault: str, checks: str
) -> dict[str, CheckResult]:
    lab = tmp_path / "lab"
    lab.mkdir(parents=True)
    for name in ("namespace.yaml", "fleetman.yaml"):
        shutil.copy(FLEETMAN / name, lab / name)
    staff = virtual_service(f"  - route:\n    - destination: {{host: {HOST}}}\n{fault}")
    (lab / "rules.yaml").write_text(GATEWAY.replace("TIMEOUT", timeout) + staff)
    (lab / "lab.yaml").write_text(
        f"title: chain\nmanifests: [namespace.yaml, fleetman.yaml, rules.yaml]\nchecks:\n{checks}"
    )
    return check_results(lab, backend)


def status_check(name: str, url: str) -> str:
    return f"  - name: {name}\n    kind: status\n    request: {{url: '{url}', from: browser}}\n"


def test_a_timeout_cuts_the_half_a_delay_behind_it_holds_back(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    checks = status_check("driver", DRIVER) + status_check("page", PAGE)
    results = run(
        tmp_path,
        backend,
        "    timeout: 0.3s\n",
        "    fault: {delay: {fixedDelay: 0.6s, percentage: {value: 50}}}\n",
        checks,
    )
    driver = results["driver"]
    assert driver.expected == pytest.approx({"200": 0.5, "504": 0.5})
    assert driver.outcome == "pass", driver.message
    # the page calls nobody: nothing behind it to wait for
    assert results["page"].expected == pytest.approx({"200": 1.0})
    assert results["page"].outcome == "pass", results["page"].message


def test_a_delay_shorter_than_the_timeout_is_not_cut(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    results = run(
        tmp_path,
        backend,
        "    timeout: 1s\n",
        "    fault: {delay: {fixedDelay: 0.1s, percentage: {value: 100}}}\n",
        status_check("driver", DRIVER),
    )
    assert results["driver"].expected == pytest.approx({"200": 1.0})
    assert results["driver"].outcome == "pass", results["driver"].message


def test_an_abort_behind_the_first_hop_is_the_status_the_apps_make_of_it(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    # the api-gateway's call gets 503 from its sidecar half the time: it answers 500,
    # which the webapp's nginx passes on
    results = run(
        tmp_path,
        backend,
        "",
        "    fault: {abort: {httpStatus: 503, percentage: {value: 50}}}\n",
        status_check("driver", DRIVER),
    )
    driver = results["driver"]
    assert driver.expected == pytest.approx({"200": 0.5, "500": 0.5})
    assert driver.outcome == "pass", driver.message


def test_the_timeouts_504_carries_envoys_ut_flag(tmp_path: Path, backend: EmbeddedBackend) -> None:
    check = status_check("flags", DRIVER) + "    by: flag\n"
    results = run(
        tmp_path,
        backend,
        "    timeout: 0.2s\n",
        "    fault: {delay: {fixedDelay: 0.4s, percentage: {value: 100}}}\n",
        check,
    )
    assert results["flags"].expected == pytest.approx({"UT": 1.0})
    assert results["flags"].outcome == "pass", results["flags"].message


def test_a_delay_behind_the_first_hop_is_the_latency_configured_predicts(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    check = (
        f"  - name: slow\n    kind: latency\n    request: {{url: '{DRIVER}', from: browser}}\n"
        "    delay: 300ms\n"
    )
    results = run(
        tmp_path,
        backend,
        "",
        "    fault: {delay: {fixedDelay: 0.3s, percentage: {value: 50}}}\n",
        check,
    )
    slow = results["slow"]
    assert slow.expected == pytest.approx({"delayed": 0.5, "prompt": 0.5})
    assert slow.outcome == "pass", slow.message
