"""The backend contract (meshlab.backends.base): declared in one place, found without
getattr; every check samples through a fresh session; notes and options are per backend."""

from __future__ import annotations

import re
import shutil
from dataclasses import fields
from pathlib import Path

import pytest

import meshlab
from meshlab.backends.base import Backend, Deployed, LabToDeploy, Session
from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.backends.embedded.options import EmbeddedOptions
from meshlab.backends.fake import FakeBackend, weighted_pods
from meshlab.backends.registry import get_backend
from meshlab.load.budgets import Budgets, flag_for
from meshlab.options import RUN_OPTIONS, RunSettings, kind_only_message, positive_int
from meshlab.pipeline import prepare, run_lab

SRC = Path(meshlab.__file__).parent
SIDECAR = """\
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
spec:
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
  egress:
  - hosts: ["./*"]
"""


def test_nothing_of_the_contract_is_found_with_getattr() -> None:
    users = [  # the contract and everything that calls it (not, e.g., kube.py's API client)
        *(SRC / "backends" / name for name in ("base.py", "registry.py", "fake.py")),
        SRC / "backends" / "embedded" / "backend.py",
        SRC / "backends" / "kind" / "backend.py",
        SRC / "backends" / "kind" / "probe.py",
        SRC / "checks" / "base.py",
        SRC / "checks" / "sampling.py",
        SRC / "checks" / "split.py",
        SRC / "pipeline.py",
        SRC / "cli.py",
        SRC / "pytest_plugin.py",
        SRC / "options.py",
    ]
    found = [
        f"{path.relative_to(SRC)}:{n}"
        for path in users
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\b(getattr|hasattr)\(", line)
    ]
    assert found == []


def test_every_backend_implements_the_contract() -> None:
    from meshlab.backends.embedded.backend import EmbeddedMesh, EmbeddedSession
    from meshlab.backends.fake import FakeMesh, FakeSession

    assert issubclass(EmbeddedBackend, Backend)
    assert issubclass(FakeBackend, Backend)
    assert issubclass(EmbeddedMesh, Deployed)
    assert issubclass(FakeMesh, Deployed)
    assert issubclass(EmbeddedSession, Session)
    assert issubclass(FakeSession, Session)


@pytest.fixture
def two_checks(tmp_path: Path, lab2_dir: Path) -> Path:
    for name in ("fleetman.yaml", "istio-rules.yaml"):
        shutil.copy(lab2_dir / name, tmp_path / name)
    request = "    request: {url: 'http://fleetman-staff-service:8080/driver/City%20Truck'}\n"
    (tmp_path / "lab.yaml").write_text(
        "title: t\nmanifests: [fleetman.yaml, istio-rules.yaml]\nchecks:\n"
        f"  - name: first\n    kind: split\n{request}"
        f"  - name: second\n    kind: split\n{request}"
    )
    return tmp_path


def test_each_check_sends_through_its_own_session(two_checks: Path) -> None:
    backend = FakeBackend(weighted_pods({"safe": 9, "risky": 1}))
    report = run_lab(two_checks, backend=backend)
    assert [r.name for r in report.results] == ["first", "second"]
    [mesh] = backend.deployed
    assert mesh.sessions == 2


def test_notes_are_the_backends_own(two_checks: Path) -> None:
    (two_checks / "istio-rules.yaml").write_text(
        (two_checks / "istio-rules.yaml").read_text() + SIDECAR
    )
    prepared = prepare(two_checks)
    lab = prepared.to_deploy()
    assert lab.name == two_checks.name
    assert lab.plan is prepared.plan
    embedded = EmbeddedBackend().notes(lab)
    assert [n.message for n in embedded] == [
        "Sidecar default/default: ingress is not simulated by the embedded backend"
    ]
    fake = FakeBackend(weighted_pods({"safe": 9, "risky": 1}))
    assert run_lab(two_checks, backend=fake).notes == []  # the plan's notes are embedded's


def test_backend_defaults_hold_nothing() -> None:
    backend = FakeBackend(weighted_pods({"safe": 1}))
    assert backend.report_extras(passed=False) == {}
    backend.close()


def test_backends_take_their_own_typed_options() -> None:
    backend = get_backend("embedded", EmbeddedOptions(Path("/opt/envoy")))
    assert isinstance(backend, EmbeddedBackend)
    assert backend.options.envoy == Path("/opt/envoy")
    with pytest.raises(TypeError):
        get_backend("embedded", object())  # type: ignore[arg-type]


def test_run_options_are_declared_once() -> None:
    flags = [o.flag for o in RUN_OPTIONS]
    assert flags == [
        "--backend",
        "--requests",
        "--envoy",
        "--kubeconfig",
        "--keep-cluster",
        "--keep-namespace",
        "--grading",
        *(flag_for(budget.name) for budget in fields(Budgets)),  # every budget, in order
    ]
    assert all(o.help for o in RUN_OPTIONS)
    assert kind_only_message() == (
        "--kubeconfig, --keep-cluster, --keep-namespace and --grading need --backend kind"
    )


def test_settings_from_either_front_end() -> None:
    settings = RunSettings.from_values(
        {"backend": "kind", "kubeconfig": "~/k.yaml", "keep_cluster": True, "requests": 7}
    )
    assert settings.requests == 7
    assert settings.kubeconfig == Path("~/k.yaml").expanduser()
    assert settings.kind_only_given() == ["--kubeconfig", "--keep-cluster"]
    assert settings.run_options().requests == 7
    assert RunSettings().backend_options() == EmbeddedOptions()
    with pytest.raises(ValueError, match="--requests: -5 is not in the range x>=1"):
        RunSettings.from_values({"requests": "-5"})


@pytest.mark.parametrize("text", ["0", "-5", "1.5", ""])
def test_positive_int_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(text) if text else "whole number"):
        positive_int(text)


def test_lab_to_deploy_is_frozen(lab2_dir: Path) -> None:
    lab: LabToDeploy = prepare(lab2_dir).to_deploy()
    with pytest.raises(AttributeError):
        lab.name = "other"  # type: ignore[misc]
