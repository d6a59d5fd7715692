"""Istio in the cluster: find the installed version, install the pinned one with istioctl.

meshlab installs Istio only into a kind cluster it created. A cluster given with
--kubeconfig must already run Istio; meshlab uses it as it is and changes nothing there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meshlab.backends.kind.apply import Progress
from meshlab.backends.kind.kube import Kube
from meshlab.backends.kind.tools import SUPPORTED_ISTIO_VERSIONS, Runner, Tools
from meshlab.errors import BackendError, BackendUnavailable
from meshlab.load.manifests import Resource
from meshlab.mesh.names import ISTIO_SYSTEM_NAMESPACE

ISTIO_NAMESPACE = ISTIO_SYSTEM_NAMESPACE
INSTALL_TIMEOUT = 900.0


@dataclass(frozen=True)
class IstioState:
    version: str | None  # istiod's image tag, None when there is no istiod
    gateway: bool  # an istio-ingressgateway Deployment exists


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
    return IstioState(version, gateway is not None)


def needs_gateway(resources: Sequence[Resource]) -> bool:
    return any(r.kind == "Gateway" for r in resources)


def install_argv(istioctl: Path, kubeconfig: Path, profile: str) -> list[str]:
    """`istioctl install --set profile=minimal -y`, access logs in JSON from every proxy:
    the ingress gateway's too (pilot/pkg/model/telemetry_logging.go: accessLogFile turns the
    mesh-wide log on), which `from: browser` reads; the run namespace's Telemetry object
    covers the sidecars on clusters meshlab did not create."""
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
) -> str:
    """Istio `version` in a cluster meshlab created: kept as is when already there."""
    state = istio_state(kube)
    if state.version == version and (state.gateway or not gateway):
        progress(f"Istio {version} is already installed")
        return version
    istioctl = tools.istioctl(version)
    profile = "default" if gateway or state.gateway else "minimal"
    verb = "installing" if state.version is None else f"replacing Istio {state.version} with"
    progress(
        f"{verb} Istio {version} ({profile} profile; usually 20-60 s) using {istioctl.describe()}"
    )
    done = runner.run(install_argv(istioctl.path, kubeconfig, profile), timeout=INSTALL_TIMEOUT)
    if done.returncode != 0:
        raise BackendError(done.failure("istioctl could not install Istio"))
    return version


def require_istio(kube: Kube, gateway: bool, where: str) -> str:
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
    return state.version
