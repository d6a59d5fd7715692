"""mesh/reach.py never leaves out what a run's traffic uses: each lab's checks' requests,
sent on a mesh where every pod has its sidecar and inbound side, are called on only by pods
whose sidecar the checks-only deployment keeps, and answered only by pods whose inbound side
it keeps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lab_runs import SHORT_DESIGN
from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.checks.request import RequestedSpec
from meshlab.pipeline import RunOptions, prepare, run_lab

pytestmark = pytest.mark.envoy

LABS = sorted(p.parent for p in (Path(__file__).resolve().parents[2] / "labs").glob("*/lab.yaml"))
PER_CHECK = 40  # every route a check's request takes at 10% or more shows in 40 with ~98.5%


@dataclass
class Traffic:
    """What the checks' requests used on the full mesh, beside what the checks-only
    deployment keeps."""

    callers: set[str]  # pods that called on
    answered: set[str]  # pods that answered a request or a call
    kept: set[str]  # pods with a sidecar in the checks-only deployment, and its gateways
    unreached: frozenset[str]  # pods whose inbound side it leaves out


def traffic(backend: EmbeddedBackend, lab: Path) -> Traffic:
    prepared = prepare(lab)
    proxies = prepared.to_deploy(checks_only=True).proxies
    kept = {pod for p in proxies.sidecars for pod in p.pods}
    kept |= {name for g in proxies.gateways for name in (g.name, *g.pods)}
    seen = Traffic(set(), set(), kept, proxies.unreached)
    with backend.deploy(prepared.to_deploy()) as mesh, mesh.session() as session:
        for check in prepared.checks:
            assert isinstance(check.spec, RequestedSpec)
            for outcome in session.send(check.spec.request.probe(), PER_CHECK):
                seen.callers |= {hop.caller for hop in outcome.hops if hop.caller is not None}
                seen.answered |= {hop.pod for hop in outcome.hops if hop.pod is not None}
                seen.answered |= {outcome.pod} if outcome.pod is not None else set()
    return seen


@pytest.mark.parametrize("lab", LABS, ids=[p.name for p in LABS])
def test_nothing_left_out_is_used(backend: EmbeddedBackend, lab: Path) -> None:
    seen = traffic(backend, lab)
    assert seen.callers <= seen.kept, f"left-out sidecars sent: {sorted(seen.callers - seen.kept)}"
    assert not seen.answered & seen.unreached, f"left-out inbound sides answered: {seen.answered}"


def test_the_test_can_fail(backend: EmbeddedBackend) -> None:
    """The dark release's checks go through the webapp and the api-gateway, and lab 2's
    reach only the staff service: the comparisons above have pods to check on both sides."""
    seen = traffic(backend, LABS[[p.name for p in LABS].index("4-dark-releases")])
    assert {c.rsplit("-", 2)[0] for c in seen.callers} >= {"webapp", "api-gateway"}
    assert seen.callers <= seen.kept
    seen = traffic(backend, LABS[[p.name for p in LABS].index("2-traffic")])
    assert {p.rsplit("-", 2)[0] for p in seen.answered} == {"staff-service", "staff-service-risky"}
    assert seen.unreached
    assert not seen.answered & seen.unreached


@pytest.mark.parametrize("lab", LABS, ids=[p.name for p in LABS])
def test_every_lab_passes_with_only_what_its_checks_use(
    backend: EmbeddedBackend, lab: Path
) -> None:
    """The shipped labs, run as `meshlab run` runs them (the checks-only deployment), pass."""
    report = run_lab(lab, RunOptions(design=SHORT_DESIGN), backend=backend)
    failed = [f"{r.name}: {r.message}" for r in report.results if not r.passed]
    assert not failed, failed
