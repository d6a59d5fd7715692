"""Istio in the cluster: find the installed version, install the pinned one with istioctl.

meshlab installs Istio only into a kind cluster it created. A cluster given with
--kubeconfig must already run Istio; meshlab uses it as it is and changes nothing there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from meshlab.backends.kind.apply import Progress
from meshlab.backends.kind.kube import Kube
from meshlab.backends.kind.tools import SUPPORTED_ISTIO_VERSIONS, Runner, Tools
from meshlab.errors import BackendError, BackendUnavailable
from meshlab.load.manifests import Resource
from meshlab.mesh.names import ISTIO_SYSTEM_NAMESPACE
from meshlab.records import dataclass

ISTIO_NAMESPACE = ISTIO_SYSTEM_NAMESPACE
INSTALL_TIMEOUT = 900.0
EGRESS_GATEWAY = "istio-egressgateway"
EGRESS_SELECTOR = ("istio", "egressgateway")  # the label istioctl gives its egress gateway


@dataclass(frozen=True)
class IstioState:
    """What Istio a cluster already runs: istiod's version and whether the ingress and egress
    gateways exist, to decide whether to install, keep, or refuse."""

    version: str | None  # istiod's image tag, None when there is no istiod
    gateway: bool  # an istio-ingressgateway Deployment exists
    egress: bool = False  # an istio-egressgateway Deployment exists


def image_version(image: str) -> str | None:
    """`docker.io/istio/pilot:1.31.1-distroless` -> `1.31.1`."""
    name = image.split("@", 1)[0]
    if ":" not in name.rsplit("/", 1)[-1]:
        return None
    return name.rsplit(":", 1)[1].split("-", 1)[0] or None


def istio_state(kube: Kube) -> IstioState:
    istiod = kube.get("apps/v1", "Deployment", ISTIO_NAMESPACE, "istiod")
    version = None
    if istiod is not None:
        containers = ((istiod.get("spec") or {}).get("template") or {}).get("spec", {}).get(
            "containers"
        ) or []
        images = [str(c.get("image", "")) for c in containers]
        version = next((v for v in map(image_version, images) if v), "unknown")
    gateway = kube.get("apps/v1", "Deployment", ISTIO_NAMESPACE, "istio-ingressgateway")
    egress = kube.get("apps/v1", "Deployment", ISTIO_NAMESPACE, EGRESS_GATEWAY)
    return IstioState(version, gateway is not None, egress is not None)


def needs_gateway(resources: Sequence[Resource]) -> bool:
    return any(r.kind == "Gateway" for r in resources)


def needs_egress(resources: Sequence[Resource]) -> bool:
    """A Gateway for Istio's egress gateway (`selector: {istio: egressgateway}`, lab 10)."""
    key, value = EGRESS_SELECTOR
    return any(r.kind == "Gateway" and r.body.spec.selector.get(key) == value for r in resources)


def install_argv(istioctl: Path, kubeconfig: Path, profile: str, egress: bool = False) -> list[str]:
    """`istioctl install --set profile=minimal -y`, access logs in JSON from every proxy:
    the gateways' too (pilot/pkg/model/telemetry_logging.go: accessLogFile turns the
    mesh-wide log on), which `from: browser` and calls through the egress gateway read; the
    run namespace's Telemetry object covers the sidecars on clusters meshlab did not create.
    With `egress`, the egress gateway as Istio's egress task installs it."""
    extra = (
        [
            "--set",
            "components.egressGateways[0].enabled=true",
            "--set",
            f"components.egressGateways[0].name={EGRESS_GATEWAY}",
        ]
        if egress
        else []
    )
    return [
        str(istioctl),
        "install",
        f"--kubeconfig={kubeconfig}",
        "--set",
        f"profile={profile}",
        "--set",
        "meshConfig.accessLogFile=/dev/stdout",
        "--set",
        "meshConfig.accessLogEncoding=JSON",
        *extra,
        "-y",
    ]


def ensure_istio(
    kube: Kube,
    runner: Runner,
    tools: Tools,
    kubeconfig: Path,
    version: str,
    gateway: bool,
    progress: Progress,
    egress: bool = False,
) -> str:
    """Istio `version` in a cluster meshlab created: kept as is when already there."""
    state = istio_state(kube)
    has_gateways = (state.gateway or not gateway) and (state.egress or not egress)
    if state.version == version and has_gateways:
        progress(f"Istio {version} is already installed")
        return version
    istioctl = tools.istioctl(version)
    profile = "default" if gateway or state.gateway else "minimal"
    verb = "installing" if state.version is None else f"replacing Istio {state.version} with"
    progress(
        f"{verb} Istio {version} ({profile} profile; usually 20-60 s) using {istioctl.describe()}"
    )
    argv = install_argv(istioctl.path, kubeconfig, profile, egress or state.egress)
    done = runner.run(argv, timeout=INSTALL_TIMEOUT)
    if done.returncode != 0:
        raise BackendError(done.failure("istioctl could not install Istio"))
    return version


def require_istio(kube: Kube, gateway: bool, where: str, egress: bool = False) -> str:
    """The Istio of a cluster meshlab did not create; refuses (exit 2) when it is missing."""
    state = istio_state(kube)
    supported = " or ".join(SUPPORTED_ISTIO_VERSIONS)
    if state.version is None:
        raise BackendUnavailable(
            f"the cluster of {where} runs no Istio (no Deployment {ISTIO_NAMESPACE}/istiod). "
            "meshlab installs Istio only into kind clusters it creates; install it there "
            f"yourself (`istioctl install --set profile=minimal -y`, Istio {supported}) or drop "
            "--kubeconfig to let meshlab create a kind cluster"
        )
    if gateway and not state.gateway:
        raise BackendUnavailable(
            f"this lab has a Gateway and the cluster of {where} has no istio-ingressgateway; "
            "install one (`istioctl install --set profile=default -y`) or drop --kubeconfig"
        )
    if egress and not state.egress:
        raise BackendUnavailable(
            f"this lab has a Gateway for the egress gateway ({'='.join(EGRESS_SELECTOR)}) and "
            f"the cluster of {where} has no {EGRESS_GATEWAY}; install one (`istioctl install "
            "--set components.egressGateways[0].enabled=true --set "
            f"components.egressGateways[0].name={EGRESS_GATEWAY} -y`) or drop --kubeconfig"
        )
    return state.version
