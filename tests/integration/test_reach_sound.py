"""mesh/reach.py never leaves out a sidecar a run's traffic passes out through: each lab's
checks' requests, sent on a mesh where every pod has its sidecar, are called on only by
pods whose sidecar the checks-only deployment keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.checks.request import RequestedSpec
from meshlab.pipeline import prepare

pytestmark = pytest.mark.envoy

LABS = sorted(p.parent for p in (Path(__file__).resolve().parents[2] / "labs").glob("*/lab.yaml"))
PER_CHECK = 40  # every route a check's request takes at 10% or more shows in 40 with ~98.5%


def callers_and_kept(backend: EmbeddedBackend, lab: Path) -> tuple[set[str], set[str]]:
    """(the pods that called on while serving the checks' requests on the full mesh, the
    pods whose sidecar the checks-only deployment keeps, and its gateways, always there)."""
    prepared = prepare(lab)
    proxies = prepared.to_deploy(checks_only=True).proxies
    kept = {pod for p in proxies.sidecars for pod in p.pods}
    kept |= {name for g in proxies.gateways for name in (g.name, *g.pods)}
    callers: set[str] = set()
    with backend.deploy(prepared.to_deploy()) as mesh, mesh.session() as session:
        for check in prepared.checks:
            assert isinstance(check.spec, RequestedSpec)
            for outcome in session.send(check.spec.request.probe(), PER_CHECK):
                callers |= {hop.caller for hop in outcome.hops if hop.caller is not None}
    return callers, kept


@pytest.mark.parametrize("lab", LABS, ids=[p.name for p in LABS])
def test_no_call_leaves_through_a_left_out_sidecar(backend: EmbeddedBackend, lab: Path) -> None:
    callers, kept = callers_and_kept(backend, lab)
    assert callers <= kept, f"called on through a left-out sidecar: {sorted(callers - kept)}"


def test_the_test_can_fail(backend: EmbeddedBackend) -> None:
    """The dark release's checks go through the webapp and the api-gateway: the comparison
    above has callers to check there."""
    callers, kept = callers_and_kept(backend, LABS[[p.name for p in LABS].index("4-dark-releases")])
    assert {c.rsplit("-", 2)[0] for c in callers} >= {"webapp", "api-gateway"}
    assert callers <= kept
