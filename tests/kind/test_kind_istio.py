"""Istio: detect what runs, install the pinned version only where meshlab may."""

from __future__ import annotations

from pathlib import Path

import pytest
from kind_fakes import Events, FakeKube, FakeRunner

from meshlab.backends.kind.istio import (
    ensure_istio,
    image_version,
    install_argv,
    istio_state,
    needs_egress,
    needs_gateway,
    require_istio,
)
from meshlab.backends.kind.tools import Tools
from meshlab.errors import BackendError, BackendUnavailable
from meshlab.pipeline import prepare

KUBECONFIG = Path("/cache/clusters/meshlab/kubeconfig")


@pytest.fixture
def tools(runner: FakeRunner, tmp_path: Path) -> Tools:
    istioctl = tmp_path / "bin" / "istioctl"
    istioctl.parent.mkdir()
    istioctl.write_text("")
    return Tools(runner, cache=tmp_path, env={"MESHLAB_ISTIOCTL": str(istioctl)})


def test_image_versions() -> None:
    assert image_version("docker.io/istio/pilot:1.31.1-distroless") == "1.31.1"
    assert image_version("gcr.io/istio-release/pilot:1.30.5") == "1.30.5"
    assert image_version("localhost:5000/istio/pilot") is None
    assert image_version("docker.io/istio/pilot:1.31.1@sha256:abc") == "1.31.1"


def test_install_command_line() -> None:
    assert install_argv(Path("/t/istioctl"), KUBECONFIG, "minimal") == [
        "/t/istioctl",
        "install",
        f"--kubeconfig={KUBECONFIG}",
        "--set",
        "profile=minimal",
        "--set",
        "meshConfig.accessLogFile=/dev/stdout",
        "--set",
        "meshConfig.accessLogEncoding=JSON",
        "-y",
    ]


def test_installs_when_missing(
    kube: FakeKube, runner: FakeRunner, tools: Tools, events: Events, tmp_path: Path
) -> None:
    kube.istiod_version = None
    assert (
        ensure_istio(kube, runner, tools, KUBECONFIG, "1.31.1", False, lambda line: None)
        == "1.31.1"
    )
    assert events == [
        "run: istioctl version --remote=false",
        f"run: istioctl install --kubeconfig={KUBECONFIG} --set profile=minimal "
        "--set meshConfig.accessLogFile=/dev/stdout --set meshConfig.accessLogEncoding=JSON -y",
    ]


def test_present_at_the_pinned_version_is_left_alone(
    kube: FakeKube, runner: FakeRunner, tools: Tools, events: Events
) -> None:
    lines: list[str] = []
    ensure_istio(kube, runner, tools, KUBECONFIG, "1.31.1", False, lines.append)
    assert events == []
    assert lines == ["Istio 1.31.1 is already installed"]


def test_other_version_or_missing_gateway_reinstalls(
    kube: FakeKube, runner: FakeRunner, tools: Tools, events: Events
) -> None:
    kube.istiod_version = "1.30.5"
    ensure_istio(kube, runner, tools, KUBECONFIG, "1.31.1", False, lambda line: None)
    assert "profile=minimal" in events[-1]
    kube.istiod_version = "1.31.1"
    ensure_istio(kube, runner, tools, KUBECONFIG, "1.31.1", True, lambda line: None)
    assert "profile=default" in events[-1]  # the lab has a Gateway: istiod + ingress gateway


def test_a_failed_install_shows_istioctls_output(
    kube: FakeKube, runner: FakeRunner, tools: Tools
) -> None:
    kube.istiod_version = None
    runner.on("install", returncode=1, stderr="Error: failed to install manifests: timeout\n")
    with pytest.raises(BackendError) as info:
        ensure_istio(kube, runner, tools, KUBECONFIG, "1.31.1", False, lambda line: None)
    assert "istioctl could not install Istio" in str(info.value)
    assert "failed to install manifests: timeout" in str(info.value)


def test_a_cluster_we_did_not_create_must_bring_its_own_istio(kube: FakeKube) -> None:
    assert require_istio(kube, False, "course.yaml") == "1.31.1"
    kube.istiod_version = None
    with pytest.raises(BackendUnavailable) as info:
        require_istio(kube, False, "course.yaml")
    assert "runs no Istio" in str(info.value)
    assert "istioctl install --set profile=minimal -y" in str(info.value)
    kube.istiod_version = "1.31.1"
    with pytest.raises(BackendUnavailable, match="no istio-ingressgateway"):
        require_istio(kube, True, "course.yaml")


def test_istio_state_and_gateway_need(kube: FakeKube, lab2_dir: Path) -> None:
    kube.gateway = True
    state = istio_state(kube)
    assert (state.version, state.gateway) == ("1.31.1", True)
    assert needs_gateway(prepare(lab2_dir).resources) is False


def test_a_lab_with_an_egress_gateway_gets_one(
    kube: FakeKube, runner: FakeRunner, tools: Tools, events: Events
) -> None:
    """Lab 10's Gateway selects `istio: egressgateway`: the install adds it, as Istio's egress
    task does; an install that has one keeps it when a later lab needs none."""
    ensure_istio(kube, runner, tools, KUBECONFIG, "1.31.1", True, lambda line: None, True)
    assert events[-1].endswith(  # as the events log shows an argv (shlex-quoted)
        "--set 'components.egressGateways[0].enabled=true' "
        "--set 'components.egressGateways[0].name=istio-egressgateway' -y"
    )
    kube.gateway = kube.egress = True
    count = len(events)
    ensure_istio(kube, runner, tools, KUBECONFIG, "1.31.1", True, lambda line: None, True)
    assert len(events) == count  # both gateways there: nothing to do
    kube.istiod_version = "1.30.5"
    ensure_istio(kube, runner, tools, KUBECONFIG, "1.31.1", False, lambda line: None)
    assert "components.egressGateways[0].enabled=true" in events[-1]


def test_needs_egress_reads_the_gateways_selector(lab2_dir: Path) -> None:
    labs = lab2_dir.parent
    assert needs_egress(prepare(labs / "10-service-entries").resources)
    assert not needs_egress(prepare(labs / "3-gateways-prefix").resources)  # ingress only


def test_a_cluster_we_did_not_create_must_bring_its_egress_gateway(kube: FakeKube) -> None:
    kube.gateway = True
    with pytest.raises(BackendUnavailable, match="no istio-egressgateway") as info:
        require_istio(kube, True, "course.yaml", egress=True)
    assert "components.egressGateways[0].enabled=true" in str(info.value)
    kube.egress = True
    assert require_istio(kube, True, "course.yaml", egress=True) == "1.31.1"
