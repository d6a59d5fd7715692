"""DestinationRule: subsets and traffic policies (load balancing, connection pools, outlier
detection, TLS), as Istio's validating webhook accepts them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from meshlab.load.istio.common import (
    IstioMeta,
    IstioNetworkingVersion,
    PortSelector,
    check_host,
    check_route_duration,
    parse_duration,
)
from meshlab.load.k8s import check_dns1123_label, check_labels
from meshlab.load.schema import Strict


class Subset(Strict):
    name: str
    labels: dict[str, str] = Field(default={})
    trafficPolicy: TrafficPolicy | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_dns1123_label(value, "subset name")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)


class CookieAttribute(Strict):
    """HTTPCookie.Attribute: one `name[=value]` Envoy adds to the Set-Cookie it writes."""

    name: str = Field(min_length=1)
    value: str | None = None


class HTTPCookie(Strict):
    name: str = Field(min_length=1)
    path: str | None = None
    ttl: str | None = None
    attributes: list[CookieAttribute] | None = None

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class RingHash(Strict):
    minimumRingSize: int = Field(default=0, ge=0, le=8388608)  # Envoy's ring size bound


MAGLEV_TABLE_LIMIT = 5000011  # pkg/config/validation/validation.go validateLoadBalancer


class Maglev(Strict):
    tableSize: int = Field(default=0, validate_default=True)

    @field_validator("tableSize")
    @classmethod
    def _prime(cls, value: int) -> int:
        """validation.go validateLoadBalancer: set, below 5000011 and prime (Envoy's rule)."""
        if value <= 0:
            raise ValueError("tableSize must be set for maglev (a prime such as 65537)")
        if value >= MAGLEV_TABLE_LIMIT:
            raise ValueError(f"tableSize must be less than {MAGLEV_TABLE_LIMIT} for maglev")
        if value < 2 or any(value % d == 0 for d in range(2, int(value**0.5) + 1)):
            raise ValueError(f"tableSize {value} must be a prime number for maglev (e.g. 65537)")
        return value


_HASH_KEYS = ("httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName")


class ConsistentHash(Strict):
    httpHeaderName: str | None = None
    httpCookie: HTTPCookie | None = None
    useSourceIp: bool | None = None
    httpQueryParameterName: str | None = None
    ringHash: RingHash | None = None
    maglev: Maglev | None = None
    minimumRingSize: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_key_one_algorithm(self) -> ConsistentHash:
        """The hash key and the algorithm are protobuf oneofs (a second one is refused when
        the YAML is read); validation.go validateLoadBalancer refuses the deprecated
        minimumRingSize next to ringHash/maglev."""
        keys = [k for k in _HASH_KEYS if getattr(self, k) is not None]
        if len(keys) > 1:
            raise ValueError(f"consistentHash takes one hash key, not {' and '.join(keys)}")
        if self.ringHash is not None and self.maglev is not None:
            raise ValueError("consistentHash takes ringHash or maglev, not both")
        if self.minimumRingSize and (self.ringHash is not None or self.maglev is not None):
            raise ValueError(
                "only one of minimumRingSize or maglev/ringHash can be specified "
                "(minimumRingSize is deprecated: use ringHash: {minimumRingSize: N})"
            )
        return self


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
    subjectAltNames: list[str] = Field(default=[])
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
    subsets: list[Subset] = Field(default=[])
    exportTo: list[str] = Field(default=[])
    workloadSelector: Any = None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value)

    @model_validator(mode="after")
    def _unique_subsets(self) -> DestinationRuleSpec:
        names = [s.name for s in self.subsets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"subsets: duplicate subset name {dupes[0]!r}")
        return self


class DestinationRule(Strict):
    apiVersion: IstioNetworkingVersion
    kind: Literal["DestinationRule"]
    metadata: IstioMeta
    spec: DestinationRuleSpec
    status: Any = None
