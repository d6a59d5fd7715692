"""What outlier detection does to a cluster's broken pods, for `expect: configured`.

A pod running an image the course ships broken answers every request with one status
(mesh/broken_images.py). Under a DestinationRule's `outlierDetection` Envoy ejects it after
the configured run of errors and sends it nothing while the ejection lasts, so once the
check has met it a few times the cluster's traffic goes to the other pods: that is the
steady state `configured` predicts, and the errors before it are the forecast's `errors`
(the split check sends them first, one at a time, and does not judge them).
"""

from __future__ import annotations

from meshlab.mesh.model import ClusterPlan
from meshlab.mesh.registry import Endpoint
from meshlab.mesh.resilience import OutlierPlan
from meshlab.records import dataclass

# envoy/config/cluster/v3/outlier_detection.proto: interval 10 s and max_ejection_percent
# 10 when unset (Istio writes maxEjectionPercent only when > 0: ctp.go applyOutlierDetection)
DEFAULT_INTERVAL_S = 10.0
DEFAULT_MAX_EJECTION_PERCENT = 10
# An ejection shorter than this may end while a check runs (the pod comes back, fails its
# run of errors again, is ejected again): `configured` does not predict that churn.
OUTLASTS_A_CHECK_S = 10.0
GATEWAY_ERRORS = frozenset({502, 503, 504})


@dataclass(frozen=True)
class EjectionForecast:
    """The broken pods a cluster ejects, the errors they answer before that, and how long
    until an ejected pod is back (Envoy re-admits only at an interval sweep)."""

    cluster: str
    ejected: tuple[str, ...]
    errors: int
    cycle_s: float
    statuses: tuple[int, ...]

    @property
    def outlasts_a_check(self) -> bool:
        return self.cycle_s >= OUTLASTS_A_CHECK_S


def errors_before_ejection(outlier: OutlierPlan, status: int) -> int | None:
    """How many answers of `status` in a row eject a host (None: no detector counts it).

    ctp.go applyOutlierDetection: consecutive5xxErrors → consecutive_5xx (Envoy's default 5
    when the block leaves it out; 0 turns it off), consecutiveGatewayErrors →
    consecutive_gateway_failure, enforced only when set; a gateway error (502/503/504) is
    also a 5xx, so the lower count wins."""
    counts = []
    if status >= 500 and outlier.ejects_after is not None:
        counts.append(outlier.ejects_after)
    gateway = outlier.consecutive_gateway_failure
    if status in GATEWAY_ERRORS and gateway:
        counts.append(gateway)
    return min(counts) if counts else None


def ejectable_hosts(outlier: OutlierPlan, hosts: int) -> int:
    """How many of a cluster's `hosts` outlier detection may have ejected at once.

    Envoy's DetectorImpl::ejectHost (outlier_detection_impl.cc, since envoyproxy/envoy#27909)
    ejects a host only if the ejected share *after* it stays within max_ejection_percent:
    100 x (ejected + 1) / hosts <= percent. The old "at least one host regardless" now needs
    `always_eject_one_host`, which Istio never sets: the default 10% of 2 pods ejects none."""
    percent = outlier.max_ejection_percent or DEFAULT_MAX_EJECTION_PERCENT
    return min(hosts, hosts * min(percent, 100) // 100)


def forecast_ejection(
    cluster: ClusterPlan, endpoints: list[Endpoint], broken: dict[str, int]
) -> EjectionForecast | None:
    """The ejection the cluster's outlier detection makes of its broken pods, if any: as
    many as `ejectable_hosts` allows. With Istio's panic threshold (minHealthPercent, 0 =
    off by default) above the healthy share left, Envoy balances over every host again: no
    ejection is visible."""
    outlier = cluster.outlier
    if outlier is None or not endpoints:
        return None
    counted = [
        (name, count, status)
        for name, status in broken.items()
        if (count := errors_before_ejection(outlier, status)) is not None
    ]
    chosen = counted[: ejectable_hosts(outlier, len(endpoints))]
    if not chosen:
        return None
    healthy = 100.0 * (len(endpoints) - len(chosen)) / len(endpoints)
    if healthy < outlier.healthy_panic_threshold:
        return None  # panic: Envoy routes to the ejected hosts too
    return EjectionForecast(
        cluster=cluster.name,
        ejected=tuple(name for name, _, _ in chosen),
        errors=sum(count for _, count, _ in chosen),
        cycle_s=max(outlier.ejection_seconds, outlier.interval or DEFAULT_INTERVAL_S),
        statuses=tuple(sorted({status for _, _, status in chosen})),
    )
