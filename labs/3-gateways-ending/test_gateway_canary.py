"""Lab 3 (ending)'s own tests: the two webapp builds through the ingress gateway, and a
student's classic mistake, a VirtualService that is not bound to the Gateway.

The mistake is made in a copy of the lab (tmp_path), deployed on the session's backend next
to the lab itself; only the check it breaks is run, so it costs one deployment and a few
requests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlab.backends.base import Backend, Deployed
from meshlab.errors import InputError
from meshlab.labtests import broken_copy, run_failing_check
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.pipeline import prepare

LAB = Path(__file__).parent
BROWSER = Origin("browser")
GATEWAY = "http://192.168.49.2:31380/"


def test_each_build_serves_its_own_page(mesh: Deployed) -> None:
    pages: dict[str, set[str]] = {}
    for outcome in mesh.send(ProbeRequest(GATEWAY, origin=BROWSER), 100):
        assert outcome.status == 200, outcome
        pages.setdefault(outcome.labels["version"], set()).add(outcome.body)
    # 100 requests at 10% miss the experimental build with probability 0.9**100, about 3e-5.
    assert set(pages) == {"original", "experimental"}
    assert pages["original"].isdisjoint(pages["experimental"])
    assert all("experimental" in page for page in pages["experimental"])


def test_a_virtualservice_without_gateways_is_refused(tmp_path: Path) -> None:
    """Without `gateways:`, the VirtualService would bind to the sidecars (`mesh`), where the
    host "*" is not allowed: Istio's webhook refuses it, and so does meshlab, at its line."""
    copy = broken_copy(
        LAB, tmp_path, "istio-rules.yaml", "  gateways:\n  - ingress-gateway-configuration\n", ""
    )
    with pytest.raises(InputError) as refused:
        prepare(copy)
    assert "istio-rules.yaml:29" in str(refused.value), refused.value
    assert '"*" is not allowed' in str(refused.value), refused.value


def test_a_misspelled_subset_fails_the_canary(tmp_path: Path, mesh_backend: Backend) -> None:
    """The VirtualService routes 10% to a subset the DestinationRule does not define: the
    gateway answers those requests 503, and the message names the subset and its line."""
    copy = broken_copy(
        LAB, tmp_path, "istio-rules.yaml", "subset: experimental", "subset: experimentl"
    )
    message, _ = run_failing_check(copy, "webapp-canary-at-the-gateway", mesh_backend)
    assert "HTTP 503" in message, message
    assert 'subset "experimentl"' in message, message
    assert "istio-rules.yaml" in message, message
