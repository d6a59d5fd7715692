"""Istio networking kinds as strict schemas, with the rules of Istio's validating webhook that
decide whether `kubectl apply` accepts the object (weights, durations, subset names, ...).

Field names keep Istio's camelCase spelling: messages and code use the student's vocabulary.

Lazy (PEP 562): a kind's module is imported when one of its names is first read, so a run
builds only the schemas of the kinds its lab writes (`meshlab run labs/2-traffic` never
imports the Sidecar, Gateway or ServiceEntry schemas).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshlab.load.istio.common import (
        ISTIO_NETWORKING_VERSIONS,
        SECURITY_VERSIONS,
        IstioMeta,
        IstioNetworkingVersion,
        PortSelector,
        StringMatch,
        UriMatch,
        WithoutHeaderMatch,
        check_host,
        check_namespaced_host,
        check_route_duration,
        parse_duration,
    )
    from meshlab.load.istio.destinationrule import (
        ClientTLSSettings,
        ConnectionPoolSettings,
        ConsistentHash,
        DestinationRule,
        DestinationRuleSpec,
        HTTPCookie,
        HTTPSettings,
        LoadBalancer,
        OutlierDetection,
        PortTrafficPolicy,
        Subset,
        TcpKeepalive,
        TCPSettings,
        TrafficPolicy,
    )
    from meshlab.load.istio.gateway import (
        Gateway,
        GatewayPort,
        GatewaySpec,
        Server,
        ServerTLSSettings,
    )
    from meshlab.load.istio.peerauthentication import (
        PeerAuthentication,
        PeerAuthenticationSpec,
    )
    from meshlab.load.istio.serviceentry import (
        ServiceEntry,
        ServiceEntryPort,
        ServiceEntrySpec,
        WorkloadEntrySpec,
        WorkloadSelector,
    )
    from meshlab.load.istio.sidecar import (
        IstioEgressListener,
        IstioIngressListener,
        OtherIstioNetworking,
        OutboundTrafficPolicy,
        Sidecar,
        SidecarSpec,
    )
    from meshlab.load.istio.virtualservice import (
        Destination,
        FaultAbort,
        FaultDelay,
        HeaderOperations,
        Headers,
        HTTPBody,
        HTTPDirectResponse,
        HTTPFaultInjection,
        HTTPMatchRequest,
        HTTPRedirect,
        HTTPRetry,
        HTTPRewrite,
        HTTPRoute,
        HTTPRouteDestination,
        Percent,
        RegexRewrite,
        RequestHeaderOperations,
        VirtualService,
        VirtualServiceSpec,
    )

# name -> the submodule defining it; keep in step with the TYPE_CHECKING imports above
# (tests/unit/test_lazy_imports.py checks that they agree)
_WHERE: dict[str, str] = {
    **dict.fromkeys(
        (
            "ISTIO_NETWORKING_VERSIONS",
            "SECURITY_VERSIONS",
            "IstioMeta",
            "IstioNetworkingVersion",
            "PortSelector",
            "StringMatch",
            "UriMatch",
            "WithoutHeaderMatch",
            "check_host",
            "check_namespaced_host",
            "check_route_duration",
            "parse_duration",
        ),
        "common",
    ),
    **dict.fromkeys(
        (
            "ClientTLSSettings",
            "ConnectionPoolSettings",
            "ConsistentHash",
            "DestinationRule",
            "DestinationRuleSpec",
            "HTTPCookie",
            "HTTPSettings",
            "LoadBalancer",
            "OutlierDetection",
            "PortTrafficPolicy",
            "Subset",
            "TcpKeepalive",
            "TCPSettings",
            "TrafficPolicy",
        ),
        "destinationrule",
    ),
    **dict.fromkeys(
        (
            "Gateway",
            "GatewayPort",
            "GatewaySpec",
            "Server",
            "ServerTLSSettings",
        ),
        "gateway",
    ),
    **dict.fromkeys(
        (
            "PeerAuthentication",
            "PeerAuthenticationSpec",
        ),
        "peerauthentication",
    ),
    **dict.fromkeys(
        (
            "ServiceEntry",
            "ServiceEntryPort",
            "ServiceEntrySpec",
            "WorkloadEntrySpec",
            "WorkloadSelector",
        ),
        "serviceentry",
    ),
    **dict.fromkeys(
        (
            "IstioEgressListener",
            "IstioIngressListener",
            "OtherIstioNetworking",
            "OutboundTrafficPolicy",
            "Sidecar",
            "SidecarSpec",
        ),
        "sidecar",
    ),
    **dict.fromkeys(
        (
            "Destination",
            "FaultAbort",
            "FaultDelay",
            "HeaderOperations",
            "Headers",
            "HTTPBody",
            "HTTPDirectResponse",
            "HTTPFaultInjection",
            "HTTPMatchRequest",
            "HTTPRedirect",
            "HTTPRetry",
            "HTTPRewrite",
            "HTTPRoute",
            "HTTPRouteDestination",
            "Percent",
            "RegexRewrite",
            "RequestHeaderOperations",
            "VirtualService",
            "VirtualServiceSpec",
        ),
        "virtualservice",
    ),
}

__all__ = [
    "ISTIO_NETWORKING_VERSIONS",
    "SECURITY_VERSIONS",
    "ClientTLSSettings",
    "ConnectionPoolSettings",
    "ConsistentHash",
    "Destination",
    "DestinationRule",
    "DestinationRuleSpec",
    "FaultAbort",
    "FaultDelay",
    "Gateway",
    "GatewayPort",
    "GatewaySpec",
    "HTTPBody",
    "HTTPCookie",
    "HTTPDirectResponse",
    "HTTPFaultInjection",
    "HTTPMatchRequest",
    "HTTPRedirect",
    "HTTPRetry",
    "HTTPRewrite",
    "HTTPRoute",
    "HTTPRouteDestination",
    "HTTPSettings",
    "HeaderOperations",
    "Headers",
    "IstioEgressListener",
    "IstioIngressListener",
    "IstioMeta",
    "IstioNetworkingVersion",
    "LoadBalancer",
    "OtherIstioNetworking",
    "OutboundTrafficPolicy",
    "OutlierDetection",
    "PeerAuthentication",
    "PeerAuthenticationSpec",
    "Percent",
    "PortSelector",
    "PortTrafficPolicy",
    "RegexRewrite",
    "RequestHeaderOperations",
    "Server",
    "ServerTLSSettings",
    "ServiceEntry",
    "ServiceEntryPort",
    "ServiceEntrySpec",
    "Sidecar",
    "SidecarSpec",
    "StringMatch",
    "Subset",
    "TCPSettings",
    "TcpKeepalive",
    "TrafficPolicy",
    "UriMatch",
    "VirtualService",
    "VirtualServiceSpec",
    "WithoutHeaderMatch",
    "WorkloadEntrySpec",
    "WorkloadSelector",
    "check_host",
    "check_namespaced_host",
    "check_route_duration",
    "parse_duration",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines `name` on first use, then remember the value."""
    submodule = _WHERE.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{submodule}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
