"""Sidecar, and the networking kinds meshlab accepts without simulating them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from meshlab.load.istio.common import IstioMeta, IstioNetworkingVersion, check_namespaced_host
from meshlab.load.istio.destinationrule import ConnectionPoolSettings
from meshlab.load.istio.gateway import ServerTLSSettings
from meshlab.load.istio.serviceentry import ServiceEntryPort, WorkloadSelector
from meshlab.load.istio.virtualservice import Destination
from meshlab.load.schema import Strict


class IstioEgressListener(Strict):
    hosts: list[str] = Field(min_length=1)
    port: ServiceEntryPort | None = None
    bind: str | None = None
    captureMode: Literal["DEFAULT", "IPTABLES", "NONE"] | None = None

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if "/" not in host:
                raise ValueError(
                    f"egress host {host!r} must be namespace/host (e.g. ./*, istio-system/*)"
                )
            # `~ns/host` excludes (pkg/config/validation/agent/validation.go
            # ValidateNamespaceSlashWildcardHostname trims the `~` before checking `ns`).
            excluded = host.startswith("~") and not host.startswith("~/")
            check_namespaced_host(host[1:] if excluded else host, "egress host")
        return value


class IstioIngressListener(Strict):
    port: ServiceEntryPort
    bind: str | None = None
    captureMode: Literal["DEFAULT", "IPTABLES", "NONE"] | None = None
    defaultEndpoint: str | None = None
    tls: ServerTLSSettings | None = None
    connectionPool: ConnectionPoolSettings | None = None


class OutboundTrafficPolicy(Strict):
    mode: Literal["REGISTRY_ONLY", "ALLOW_ANY"] | None = None
    egressProxy: Destination | None = None


class SidecarSpec(Strict):
    workloadSelector: WorkloadSelector | None = None
    ingress: list[IstioIngressListener] = Field(default=[])
    egress: list[IstioEgressListener] = Field(default=[])
    outboundTrafficPolicy: OutboundTrafficPolicy | None = None
    inboundConnectionPool: ConnectionPoolSettings | None = None

    @field_validator("egress")
    @classmethod
    def _egress(cls, value: list[IstioEgressListener]) -> list[IstioEgressListener]:
        """pkg/config/validation/validation.go ValidateSidecar: one egress listener without
        a port at most, and it comes last (it takes the ports the others leave); ports unique."""
        ports: set[int] = set()
        for index, listener in enumerate(value):
            if listener.port is None:
                if index != len(value) - 1:
                    raise ValueError(
                        f"egress[{index}] has no port: the egress listener without a port "
                        "must be the last one (it serves the ports the others do not)"
                    )
            elif listener.port.number in ports:
                raise ValueError(
                    f"egress[{index}]: port {listener.port.number} is already another egress "
                    "listener's (ports on egress listeners must be unique)"
                )
            else:
                ports.add(listener.port.number)
        return value


class Sidecar(Strict):
    apiVersion: IstioNetworkingVersion
    kind: Literal["Sidecar"]
    metadata: IstioMeta
    spec: SidecarSpec
    status: Any = None


class OtherIstioNetworking(Strict):
    """WorkloadEntry, EnvoyFilter, ...: accepted; simulated by later backends/issues."""

    apiVersion: IstioNetworkingVersion
    kind: Literal[
        "WorkloadEntry",
        "WorkloadGroup",
        "EnvoyFilter",
        "ProxyConfig",
    ]
    metadata: IstioMeta
    spec: dict[str, Any]
    status: Any = None
