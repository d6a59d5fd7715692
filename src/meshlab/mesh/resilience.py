"""A DestinationRule's outlierDetection and connectionPool as istiod writes them on a
cluster (pilot/pkg/networking/core/cluster_traffic_policy.go `applyOutlierDetection`,
`applyConnectionPool`, `getDefaultCircuitBreakerThresholds`), kept as plain data so the
renderer, `expect: configured` and the checks read the same numbers."""

from __future__ import annotations

from meshlab.load import istio
from meshlab.records import dataclass

UINT32_MAX = 4294967295


@dataclass(frozen=True)
class OutlierPlan:
    """Envoy's `outlier_detection` for a cluster; None fields are left to Envoy's defaults
    (envoy/config/cluster/v3/outlier_detection.proto: 5 consecutive 5xx enforced 100%,
    interval 10s, base ejection 30s, at most 10% of hosts ejected but at least one)."""

    consecutive_5xx: int | None = None
    consecutive_gateway_failure: int | None = None
    interval: float | None = None  # seconds
    base_ejection_time: float | None = None  # seconds
    max_ejection_percent: int | None = None
    split_local_origin: bool = False
    consecutive_local_origin_failure: int | None = None
    healthy_panic_threshold: float = 0.0  # minHealthPercent; Istio turns panic off by default

    @property
    def ejects_after(self) -> int | None:
        """How many consecutive 5xx eject a host (None: that detector is off)."""
        count = 5 if self.consecutive_5xx is None else self.consecutive_5xx
        return count or None

    @property
    def ejection_seconds(self) -> float:
        """How long a first ejection lasts (Envoy: base time x times ejected)."""
        return 30.0 if self.base_ejection_time is None else self.base_ejection_time


@dataclass(frozen=True)
class PoolPlan:
    """Envoy's `circuit_breakers.thresholds[0]` and the pool's HTTP options: Istio's
    "unlimited" defaults (uint32 max, Envoy's own 1024/1024/1024/3 never apply)."""

    max_connections: int = UINT32_MAX
    max_pending_requests: int = UINT32_MAX
    max_requests: int = UINT32_MAX
    max_retries: int = UINT32_MAX
    connect_timeout: float = 10.0  # mesh connectTimeout default
    idle_timeout: float | None = None
    max_requests_per_connection: int | None = None

    @property
    def limited(self) -> bool:
        """Whether any threshold is below Istio's unlimited default."""
        return min(
            self.max_connections, self.max_pending_requests, self.max_requests, self.max_retries
        ) < (UINT32_MAX)


def outlier_plan(detection: istio.OutlierDetection | None) -> OutlierPlan | None:
    """cluster_traffic_policy.go applyOutlierDetection: nothing without the block; an
    explicit 0 disables that detector (enforcing 0); the deprecated `consecutiveErrors` is
    ignored (IST0133 warns); `minHealthPercent` becomes the panic threshold (0 = off)."""
    if detection is None:
        return None
    split = bool(detection.splitExternalLocalOriginErrors)
    local = detection.consecutiveLocalOriginFailures if split else None
    return OutlierPlan(
        consecutive_5xx=detection.consecutive5xxErrors,
        consecutive_gateway_failure=detection.consecutiveGatewayErrors,
        interval=_seconds(detection.interval),
        base_ejection_time=_seconds(detection.baseEjectionTime),
        max_ejection_percent=detection.maxEjectionPercent or None,
        split_local_origin=split,
        consecutive_local_origin_failure=local or None,
        healthy_panic_threshold=float(detection.minHealthPercent or 0),
    )


def pool_plan(pool: istio.ConnectionPoolSettings | None) -> PoolPlan:
    """cluster_traffic_policy.go applyConnectionPool: a value <= 0 keeps the default; the
    HTTP idle timeout wins over the TCP one."""
    if pool is None:
        return PoolPlan()
    http, tcp = pool.http, pool.tcp

    def limit(value: int | None) -> int:
        return value if value else UINT32_MAX

    idle = (http.idleTimeout if http else None) or (tcp.idleTimeout if tcp else None)
    connect = _seconds(tcp.connectTimeout) if tcp else None
    return PoolPlan(
        max_connections=limit(tcp.maxConnections if tcp else None),
        max_pending_requests=limit(http.http1MaxPendingRequests if http else None),
        max_requests=limit(http.http2MaxRequests if http else None),
        max_retries=limit(http.maxRetries if http else None),
        connect_timeout=10.0 if connect is None else connect,
        idle_timeout=_seconds(idle),
        max_requests_per_connection=(http.maxRequestsPerConnection or None) if http else None,
    )


def _seconds(text: str | None) -> float | None:
    return None if text is None else istio.parse_duration(text)
