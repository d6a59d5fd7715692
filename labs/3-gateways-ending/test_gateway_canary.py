"""Lab 3 (ending)'s own tests: the two webapp builds through the ingress gateway, and a
student's classic mistake, a VirtualService that is not bound to the Gateway.

The mistake is made in a copy of the lab (tmp_path), deployed on the session's backend next
to the lab itself; only the check it breaks is run, so it costs one deployment and a few
requests.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from meshlab.backends.base import Backend, Deployed
from meshlab.errors import InputError
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.pipeline import prepare, run_prepared

LAB = Path(__file__).parent
BROWSER = Origin("browser")
GATEWAY = "http://192.168.49.2:31380/"


def broken_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """The lab, copied, with one edit a student might make (the edit must apply)."""
    copy = tmp_path / LAB.name
    shutil.copytree(LAB, copy, ignore=shutil.ignore_patterns("test_*", "__pycache__"))
    text = (copy / file).read_text()
    assert old in text, f"{file} no longer holds {old!r}: update this test"
    (copy / file).write_text(text.replace(old, new, 1))
    return copy


def run_one(lab_dir: Path, check: str, backend: Backend) -> str:
    """Run one check of a lab folder; its failure message (the check must fail)."""
    prepared = prepare(lab_dir)
    only = tuple(c for c in prepared.checks if c.name == check)
    report = run_prepared(replace(prepared, checks=only), backend=backend)
    (result,) = report.results
    assert not result.passed, result.message
    return result.message


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
        tmp_path, "istio-rules.yaml", "  gateways:\n  - ingress-gateway-configuration\n", ""
    )
    with pytest.raises(InputError) as refused:
        prepare(copy)
    assert "istio-rules.yaml:29" in str(refused.value), refused.value
    assert '"*" is not allowed' in str(refused.value), refused.value


def test_a_misspelled_subset_fails_the_canary(tmp_path: Path, mesh_backend: Backend) -> None:
    """The VirtualService routes 10% to a subset the DestinationRule does not define: the
    gateway answers those requests 503, and the message names the subset and its line."""
    copy = broken_copy(tmp_path, "istio-rules.yaml", "subset: experimental", "subset: experimentl")
    message = run_one(copy, "webapp-canary-at-the-gateway", mesh_backend)
    assert "HTTP 503" in message, message
    assert 'subset "experimentl"' in message, message
    assert "istio-rules.yaml" in message, message
