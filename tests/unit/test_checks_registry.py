"""A new check kind slots in through the registry, without touching the split kind."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from meshlab.backends.fake import FakeBackend, weighted_pods
from meshlab.checks import base, load_checked_lab
from meshlab.checks.base import Check, CheckContext, CheckKind, CheckResult, CheckSpec
from meshlab.errors import InputError
from meshlab.pipeline import run_lab


class AllOkSpec(CheckSpec):
    kind: Literal["all-ok"]
    url: str
    requests: int = 20


class AllOkKind(CheckKind):
    """Every response is below 500: the shape a fault-injection kind would take."""

    kind = "all-ok"
    spec_model = AllOkSpec

    def run(self, check: Check, context: CheckContext) -> CheckResult:
        from meshlab.mesh.request import ProbeRequest

        spec: AllOkSpec = check.spec
        with context.session() as session:
            outcomes = session.send(ProbeRequest(spec.url), spec.requests)
        bad = sum(o.failed for o in outcomes)
        return CheckResult(
            check.name,
            self.kind,
            bad == 0,
            "pass" if bad == 0 else "fail",
            f"{check.name}: {bad} failed",
            len(outcomes),
            spec.points,
        )


@pytest.fixture
def lab_with_new_kind(tmp_path: Path, lab2_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(base._REGISTRY, "all-ok", AllOkKind())
    for name in ("fleetman.yaml", "istio-rules.yaml"):
        (tmp_path / name).write_text((lab2_dir / name).read_text())
    (tmp_path / "lab.yaml").write_text(
        "title: t\nmanifests: [fleetman.yaml, istio-rules.yaml]\nchecks:\n"
        "  - name: ok\n    kind: all-ok\n    url: http://fleetman-staff-service:8080/\n"
        "  - name: split\n    kind: split\n"
        "    request: {url: 'http://fleetman-staff-service:8080/driver/City%20Truck'}\n"
    )
    return tmp_path


def test_registered_kind_is_parsed_and_run(lab_with_new_kind: Path) -> None:
    lab = load_checked_lab(lab_with_new_kind)
    assert [c.kind for c in lab.checks] == ["all-ok", "split"]
    report = run_lab(lab_with_new_kind, backend=FakeBackend(weighted_pods({"safe": 9, "risky": 1})))
    assert [r.name for r in report.results] == ["ok", "split"]
    assert report.passed


def test_new_kind_fields_are_validated_strictly(lab_with_new_kind: Path) -> None:
    lab_file = lab_with_new_kind / "lab.yaml"
    lab_file.write_text(lab_file.read_text().replace("    url: http", "    urll: http"))
    with pytest.raises(InputError, match="unknown field"):
        load_checked_lab(lab_with_new_kind)


def test_registering_a_kind_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(base._REGISTRY, "all-ok", AllOkKind())
    with pytest.raises(ValueError, match="registered twice"):
        base.register(AllOkKind)
