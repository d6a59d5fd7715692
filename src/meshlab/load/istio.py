"""Istio networking kinds as strict schemas, with the rules of Istio's validating webhook that
decide whether `kubectl apply` accepts the object (weights, durations, subset names, ...).

Field names keep Istio's camelCase spelling: messages and code use the student's vocabulary.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from meshlab.load.k8s import ObjectMeta, check_dns1123_label, check_labels
from meshlab.load.schema import Strict

ISTIO_NETWORKING_VERSIONS = (
    "networking.istio.io/v1alpha3",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1",
)
IstioNetworkingVersion = Literal[
    "networking.istio.io/v1alpha3", "networking.istio.io/v1beta1", "networking.istio.io/v1"
]

_DURATION = re.compile(r"^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> float:
    """Seconds in a protobuf/Go duration such as `1.5s` or `1m30s`."""
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration (examples: 10ms, 1.5s, 2m)")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def check_route_duration(text: str) -> str:
    """Istio rejects route durations below 1ms or with sub-millisecond parts."""
    seconds = parse_duration(text)
    if seconds < 1e-3:
        raise ValueError(f"duration {text!r} must be at least 1ms")
    if abs(round(seconds * 1000) - seconds * 1000) > 1e-6:
        raise ValueError(f"duration {text!r} must be a whole number of milliseconds")
    return text


class StringMatch(Strict):
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> StringMatch:
        chosen = [k for k in ("exact", "prefix", "regex") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ValueError(f"set only one of exact, prefix, regex (got {', '.join(chosen)})")
        return self


class PortSelector(Strict):
    number: int = Field(ge=1, le=65535)


class Destination(Strict):
    host: str = Field(min_length=1)
    subset: str | None = None
    port: PortSelector | None = None

    @field_validator("subset")
    @classmethod
    def _subset(cls, value: str | None) -> str | None:
        # Istio's webhook validates the reference too, not only the DestinationRule's names.
        return None if value is None else check_dns1123_label(value, "subset name")


class HeaderOperations(Strict):
    set: dict[str, str] = Field(default_factory=dict)
    add: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class Headers(Strict):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPRouteDestination(Strict):
    destination: Destination
    weight: int | None = None
    headers: Headers | None = None

    @field_validator("weight")
    @classmethod
    def _weight(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError(f"weight {value} must be zero or more")
        return value


class HTTPMatchRequest(Strict):
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] = Field(default_factory=dict)
    port: int | None = Field(default=None, ge=1, le=65535)
    sourceLabels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    queryParams: dict[str, StringMatch] = Field(default_factory=dict)
    ignoreUriCase: bool = False
    withoutHeaders: dict[str, StringMatch] = Field(default_factory=dict)
    sourceNamespace: str | None = None
    statPrefix: str | None = None

    @field_validator("headers", "withoutHeaders")
    @classmethod
    def _header_names(cls, value: dict[str, StringMatch]) -> dict[str, StringMatch]:
        for name in value:
            if name != name.lower():
                raise ValueError(f"header name {name!r} must be lowercase")
        return value


class HTTPRetry(Strict):
    attempts: int = 0
    perTryTimeout: str | None = None
    retryOn: str | None = None
    retryRemoteLocalities: bool | None = None
    retryIgnorePreviousHosts: bool | None = None
    backoff: str | None = None

    @field_validator("perTryTimeout", "backoff")
    @classmethod
    def _durations(cls, value: str | None) -> str | None:
        return None if value is None else check_route_duration(value)

    @field_validator("attempts")
    @classmethod
    def _attempts(cls, value: int) -> int:
        if value < 0:
            raise ValueError("attempts cannot be negative")
        return value


class Percent(Strict):
    value: float = Field(ge=0, le=100)


class FaultDelay(Strict):
    fixedDelay: str | None = None
    percentage: Percent | None = None
    percent: int | None = Field(default=None, ge=0, le=100)
    exponentialDelay: str | None = None

    @model_validator(mode="after")
    def _delay(self) -> FaultDelay:
        if self.exponentialDelay is not None:
            raise ValueError("exponentialDelay is not supported by Istio")
        if self.fixedDelay is None:
            raise ValueError("delay needs fixedDelay")
        check_route_duration(self.fixedDelay)
        return self


class FaultAbort(Strict):
    httpStatus: int | None = Field(default=None, ge=200, le=599)
    grpcStatus: str | None = None
    http2Error: str | None = None
    percentage: Percent | None = None

    @model_validator(mode="after")
    def _abort(self) -> FaultAbort:
        if self.http2Error is not None:
            raise ValueError("http2Error is not supported by Istio")
        if self.httpStatus is None and self.grpcStatus is None:
            raise ValueError("abort needs httpStatus or grpcStatus")
        return self


class HTTPFaultInjection(Strict):
    delay: FaultDelay | None = None
    abort: FaultAbort | None = None

    @model_validator(mode="after")
    def _some(self) -> HTTPFaultInjection:
        if self.delay is None and self.abort is None:
            raise ValueError("fault needs delay and/or abort")
        return self


class HTTPRewrite(Strict):
    uri: str | None = None
    authority: str | None = None
    uriRegexRewrite: Any = None


class HTTPRedirect(Strict):
    uri: str | None = None
    authority: str | None = None
    port: int | None = None
    derivePort: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: str | None = None
    redirectCode: int = 301


class HTTPBody(Strict):
    string: str | None = None
    bytes: str | None = None


class HTTPDirectResponse(Strict):
    status: int = Field(ge=200, le=599)
    body: HTTPBody | None = None


class HTTPRoute(Strict):
    name: str | None = None
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    route: list[HTTPRouteDestination] = Field(default_factory=list)
    redirect: HTTPRedirect | None = None
    directResponse: HTTPDirectResponse | None = None
    delegate: Any = None
    rewrite: HTTPRewrite | None = None
    timeout: str | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: Any = None
    mirrorPercentage: Percent | None = None
    mirrorPercent: Any = None
    mirror_percent: Any = None
    corsPolicy: Any = None
    headers: Headers | None = None

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str | None) -> str | None:
        return None if value is None else check_route_duration(value)

    @model_validator(mode="after")
    def _actions(self) -> HTTPRoute:
        actions = [
            name
            for name, present in (
                ("route", bool(self.route)),
                ("redirect", self.redirect is not None),
                ("directResponse", self.directResponse is not None),
                ("delegate", self.delegate is not None),
            )
            if present
        ]
        if not actions:
            raise ValueError("an HTTP route needs one of route, redirect, directResponse, delegate")
        if len(actions) > 1:
            raise ValueError(
                f"route, redirect, directResponse are exclusive (got {', '.join(actions)})"
            )
        if len(self.route) > 1 and sum(d.weight or 0 for d in self.route) == 0:
            raise ValueError("total destination weight = 0: at least one weight must be positive")
        return self


class VirtualServiceSpec(Strict):
    hosts: list[str] = Field(default_factory=list)
    gateways: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(default_factory=list)
    tls: Any = None
    tcp: Any = None
    exportTo: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _hosts(self) -> VirtualServiceSpec:
        if not self.hosts:
            raise ValueError("hosts: a VirtualService must have at least one host")
        bound_to_mesh = not self.gateways or "mesh" in self.gateways
        if bound_to_mesh and "*" in self.hosts:
            raise ValueError('hosts: "*" is not allowed for VirtualServices bound to the mesh')
        if not self.http and not self.tls and not self.tcp:
            raise ValueError("a VirtualService needs http, tcp or tls routes")
        return self


class Subset(Strict):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    trafficPolicy: TrafficPolicy | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_dns1123_label(value, "subset name")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)


class HTTPCookie(Strict):
    name: str = Field(min_length=1)
    path: str | None = None
    ttl: str | None = None
    attributes: Any = None

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class ConsistentHash(Strict):
    httpHeaderName: str | None = None
    httpCookie: HTTPCookie | None = None
    useSourceIp: bool | None = None
    httpQueryParameterName: str | None = None
    ringHash: Any = None
    maglev: Any = None
    minimumRingSize: int | None = None


class LoadBalancer(Strict):
    simple: (
        Literal[
            "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"
        ]
        | None
    ) = None
    consistentHash: ConsistentHash | None = None
    localityLbSetting: Any = None
    warmupDurationSecs: Any = None
    warmup: Any = None


def _optional_duration(value: str | None) -> str | None:
    return None if value is None else check_route_duration(value)


class TcpKeepalive(Strict):
    probes: int | None = Field(default=None, ge=0)
    time: str | None = None
    interval: str | None = None


class TCPSettings(Strict):
    maxConnections: int | None = Field(default=None, ge=0)
    connectTimeout: str | None = None
    tcpKeepalive: TcpKeepalive | None = None
    maxConnectionDuration: str | None = None
    idleTimeout: str | None = None

    _durations = field_validator("connectTimeout", "maxConnectionDuration", "idleTimeout")(
        _optional_duration
    )


class HTTPSettings(Strict):
    http1MaxPendingRequests: int | None = Field(default=None, ge=0)
    http2MaxRequests: int | None = Field(default=None, ge=0)
    maxRequestsPerConnection: int | None = Field(default=None, ge=0)
    maxRetries: int | None = Field(default=None, ge=0)
    idleTimeout: str | None = None
    h2UpgradePolicy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    useClientProtocol: bool | None = None
    maxConcurrentStreams: int | None = Field(default=None, ge=0)

    _durations = field_validator("idleTimeout")(_optional_duration)


class ConnectionPoolSettings(Strict):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class OutlierDetection(Strict):
    consecutiveErrors: int | None = Field(default=None, ge=0)  # deprecated: IST0133
    consecutive5xxErrors: int | None = Field(default=None, ge=0)
    consecutiveGatewayErrors: int | None = Field(default=None, ge=0)
    consecutiveLocalOriginFailures: int | None = Field(default=None, ge=0)
    splitExternalLocalOriginErrors: bool | None = None
    interval: str | None = None
    baseEjectionTime: str | None = None
    maxEjectionPercent: int | None = Field(default=None, ge=0, le=100)
    minHealthPercent: int | None = Field(default=None, ge=0, le=100)

    _durations = field_validator("interval", "baseEjectionTime")(_optional_duration)


class ClientTLSSettings(Strict):
    mode: Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] | None = None
    clientCertificate: str | None = None
    privateKey: str | None = None
    caCertificates: str | None = None
    credentialName: str | None = None
    subjectAltNames: list[str] = Field(default_factory=list)
    sni: str | None = None
    insecureSkipVerify: bool | None = None
    caCrl: str | None = None


class PortTrafficPolicy(Strict):
    port: PortSelector | None = None
    loadBalancer: LoadBalancer | None = None
    connectionPool: ConnectionPoolSettings | None = None
    outlierDetection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


class TrafficPolicy(Strict):
    loadBalancer: LoadBalancer | None = None
    connectionPool: ConnectionPoolSettings | None = None
    outlierDetection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    portLevelSettings: list[PortTrafficPolicy] | None = None
    tunnel: Any = None
    proxyProtocol: Any = None
    retryBudget: Any = None


class DestinationRuleSpec(Strict):
    host: str = Field(min_length=1)
    trafficPolicy: TrafficPolicy | None = None
    subsets: list[Subset] = Field(default_factory=list)
    exportTo: list[str] = Field(default_factory=list)
    workloadSelector: Any = None

    @model_validator(mode="after")
    def _unique_subsets(self) -> DestinationRuleSpec:
        names = [s.name for s in self.subsets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"subsets: duplicate subset name {dupes[0]!r}")
        return self


class IstioMeta(ObjectMeta):
    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_dns1123_label(value, "name")


class VirtualService(Strict):
    apiVersion: IstioNetworkingVersion
    kind: Literal["VirtualService"]
    metadata: IstioMeta
    spec: VirtualServiceSpec
    status: Any = None


class DestinationRule(Strict):
    apiVersion: IstioNetworkingVersion
    kind: Literal["DestinationRule"]
    metadata: IstioMeta
    spec: DestinationRuleSpec
    status: Any = None


_HOST = re.compile(
    r"^(\*|(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.?)$"
)


def check_host(value: str, what: str = "host") -> str:
    """A DNS name, maybe with a leading `*.` wildcard, or `*` (Istio's ValidateWildcardDomain)."""
    if len(value) > 255 or not _HOST.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid host name "
            "(examples: reviews.default.svc.cluster.local, *.example.com)"
        )
    return value


def check_namespaced_host(value: str, what: str = "host") -> str:
    """`[namespace/]host` as Gateway servers and Sidecar egress write them."""
    namespace, slash, host = value.rpartition("/")
    if slash and namespace not in (".", "*", "~"):
        check_dns1123_label(namespace, f"namespace of {what}")
    return check_host(host, what) if host != "*" else value


class GatewayPort(Strict):
    number: int = Field(ge=1, le=65535)
    protocol: str
    name: str | None = None
    targetPort: int | None = Field(default=None, ge=1, le=65535)

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        known = ("HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS", "UDP")
        if value.upper() not in known:
            raise ValueError(f"protocol {value!r} is not one of {', '.join(known)}")
        return value


class ServerTLSSettings(Strict):
    httpsRedirect: bool | None = None
    mode: (
        Literal[
            "PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"
        ]
        | None
    ) = None
    serverCertificate: str | None = None
    privateKey: str | None = None
    caCertificates: str | None = None
    caCrl: str | None = None
    credentialName: str | None = None
    credentialNames: list[str] = Field(default_factory=list)
    tlsCertificates: Any = None
    subjectAltNames: list[str] = Field(default_factory=list)
    verifyCertificateSpki: list[str] = Field(default_factory=list)
    verifyCertificateHash: list[str] = Field(default_factory=list)
    minProtocolVersion: Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"] | None = (
        None
    )
    maxProtocolVersion: Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"] | None = (
        None
    )
    cipherSuites: list[str] = Field(default_factory=list)


class Server(Strict):
    port: GatewayPort
    hosts: list[str] = Field(min_length=1)
    tls: ServerTLSSettings | None = None
    bind: str | None = None
    defaultEndpoint: str | None = None
    name: str | None = None

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return [check_namespaced_host(h, "server host") for h in value]

    @model_validator(mode="after")
    def _tls(self) -> Server:
        if self.port.protocol.upper() in ("HTTPS", "TLS") and self.tls is None:
            raise ValueError(
                f"server on port {self.port.number}: protocol {self.port.protocol} "
                "needs tls settings"
            )
        return self


class GatewaySpec(Strict):
    servers: list[Server] = Field(min_length=1)
    selector: dict[str, str] = Field(default_factory=dict)

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)

    @model_validator(mode="after")
    def _port_names(self) -> GatewaySpec:
        names = [s.port.name for s in self.servers if s.port.name]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"servers: port names must be unique (duplicate {dupes[0]!r})")
        return self


class Gateway(Strict):
    apiVersion: IstioNetworkingVersion
    kind: Literal["Gateway"]
    metadata: IstioMeta
    spec: GatewaySpec
    status: Any = None


class ServiceEntryPort(Strict):
    number: int = Field(ge=1, le=65535)
    protocol: str | None = None
    name: str | None = None
    targetPort: int | None = Field(default=None, ge=1, le=65535)


class WorkloadSelector(Strict):
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)


class WorkloadEntrySpec(Strict):
    address: str | None = None
    ports: dict[str, int] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    locality: str | None = None
    weight: int | None = Field(default=None, ge=0)
    serviceAccount: str | None = None


class ServiceEntrySpec(Strict):
    hosts: list[str] = Field(min_length=1)
    addresses: list[str] = Field(default_factory=list)
    ports: list[ServiceEntryPort] = Field(default_factory=list)
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] | None = None
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"] | None = None
    endpoints: list[WorkloadEntrySpec] = Field(default_factory=list)
    workloadSelector: WorkloadSelector | None = None
    exportTo: list[str] = Field(default_factory=list)
    subjectAltNames: list[str] = Field(default_factory=list)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if host == "*":
                raise ValueError('hosts: "*" is not allowed in a ServiceEntry')
            check_host(host, "host")
        return value

    @model_validator(mode="after")
    def _ports(self) -> ServiceEntrySpec:
        names = [p.name for p in self.ports if p.name]
        if len(names) != len(set(names)):
            raise ValueError("ports: port names must be unique")
        if self.endpoints and self.workloadSelector is not None:
            raise ValueError("only one of endpoints and workloadSelector can be set")
        return self


class ServiceEntry(Strict):
    apiVersion: IstioNetworkingVersion
    kind: Literal["ServiceEntry"]
    metadata: IstioMeta
    spec: ServiceEntrySpec
    status: Any = None


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
            check_namespaced_host(host, "egress host")
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
    ingress: list[IstioIngressListener] = Field(default_factory=list)
    egress: list[IstioEgressListener] = Field(default_factory=list)
    outboundTrafficPolicy: OutboundTrafficPolicy | None = None
    inboundConnectionPool: ConnectionPoolSettings | None = None


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


Subset.model_rebuild()
