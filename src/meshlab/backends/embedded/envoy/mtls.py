"""Mutual TLS between the sidecars' Envoys, shaped as istiod writes it.

Client side (pilot/pkg/networking/core/cluster_tls.go buildUpstreamTLSSettings and
applyUpstreamTLSSettings): a DestinationRule `tls.mode: ISTIO_MUTUAL` sends mTLS to every
endpoint; `DISABLE` (and SIMPLE/MUTUAL, not simulated) leaves ISTIO's mTLS off; with no `tls`
auto mTLS applies unless the Service's namespace (or the mesh) policy is DISABLE: a
transport-socket match sends mTLS to endpoints labelled `tlsMode: istio` (pods with a
sidecar) and plaintext to the others. SNI `outbound_.<port>_.<subset>_.<host>`, ALPN
`istio-peer-exchange, istio`, the peer's certificate checked against the Service's accounts.

Server side (pilot/pkg/networking/core/listener_inbound.go, with
pilot/pkg/security/authn/policy_applier.go InboundMTLSSettings): STRICT = one filter chain
requiring TLS and a client certificate from the mesh CA; PERMISSIVE = a TLS inspector and
two chains (TLS and plaintext); DISABLE = plaintext only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meshlab.backends.embedded.certs import Identity, MeshCerts
from meshlab.backends.embedded.envoy.clusters import UpstreamTls
from meshlab.backends.embedded.envoy.routes import T
from meshlab.load.manifests import Resource
from meshlab.mesh.names import ISTIO_SYSTEM_NAMESPACE
from meshlab.mesh.peer_authentication import (
    Mode,
    namespace_mode,
    peer_policies,
    pod_mtls,
    service_account,
    spiffe_id,
)
from meshlab.mesh.plan import ClusterPlan
from meshlab.mesh.proxies import MeshProxies, ProxyPlan
from meshlab.mesh.registry import PodInstance
from meshlab.records import dataclass

TLS_SOCKET = "envoy.transport_sockets.tls"
_UPSTREAM = T + "extensions.transport_sockets.tls.v3.UpstreamTlsContext"
_DOWNSTREAM = T + "extensions.transport_sockets.tls.v3.DownstreamTlsContext"
TLS_INSPECTOR = {
    "name": "envoy.filters.listener.tls_inspector",
    "typed_config": {"@type": T + "extensions.filters.listener.tls_inspector.v3.TlsInspector"},
}
ISTIO_ALPN = ["istio-peer-exchange", "istio"]  # cluster_tls.go: util.ALPNInMeshWithMxc
# Istio's default install: the ingress gateway runs as this account in istio-system
GATEWAY_ACCOUNT = "istio-ingressgateway-service-account"
CLIENT_ACCOUNT = "default"  # the test client pod runs as its namespace's default account


@dataclass(frozen=True)
class MeshTls:
    """Everything the renderer needs for mTLS: the policies, the pods, the certificates."""

    certs: MeshCerts
    policies: Sequence[Resource]
    pods: Mapping[str, PodInstance]
    meshed: frozenset[str]
    proxy_ids: Mapping[str, str]  # proxy name -> its SPIFFE id

    def inbound_mode(self, pod: str, port: int) -> Mode:
        return pod_mtls(self.policies, self.pods[pod]).for_port(port)

    def pod_identity(self, pod: str) -> Identity:
        return self.certs.of(pod_spiffe(self.pods[pod]))

    def upstream(self, proxy: ProxyPlan, plan: ClusterPlan) -> UpstreamTls | None:
        """The TLS a proxy's outbound cluster uses (None: plaintext)."""
        mode = client_tls_mode(plan)
        if mode in ("DISABLE", "SIMPLE", "MUTUAL"):
            return None  # user supplied: no Istio mTLS (SIMPLE/MUTUAL not simulated)
        # auto mTLS only towards endpoints labelled `security.istio.io/tlsMode: istio`
        # (cluster_tls.go buildUpstreamTLSSettings), which the injector gives workloads with a
        # sidecar: not a ServiceEntry host's stand-ins, nor the install's gateway pods
        workloads = [
            e.pod
            for endpoints in plan.service.endpoints.values()
            for e in endpoints
            if e.pod.owner.kind in ("Deployment", "Pod")
        ]
        if mode is None and not workloads:
            return None
        if mode is None and namespace_mode(self.policies, plan.service.namespace) == "DISABLE":
            return None
        accounts = sorted({pod_spiffe(pod) for pod in workloads})
        subset = plan.subset or ""
        sni = f"outbound_.{plan.port}_.{subset}_.{plan.service.fqdn}"
        socket = upstream_socket(
            self.certs.of(self.proxy_ids[proxy.name]), self.certs.ca, accounts, sni
        )
        return UpstreamTls(socket, None if mode == "ISTIO_MUTUAL" else self.meshed)


def client_tls_mode(plan: ClusterPlan) -> str | None:
    """The DestinationRule's `tls.mode` for this cluster: a subset's policy over the rule's,
    a port-level setting over its policy's (networking/core/cluster_traffic_policy.go
    MergeTrafficPolicy and selectTrafficPolicyComponents); None when no rule sets one."""
    rule = plan.destination_rule
    if rule is None:
        return None
    policies = []
    for subset in rule.body.spec.subsets if plan.subset else []:
        if subset.name == plan.subset and subset.trafficPolicy is not None:
            policies.append(subset.trafficPolicy)
    if rule.body.spec.trafficPolicy is not None:
        policies.append(rule.body.spec.trafficPolicy)
    for policy in policies:
        # a port's settings replace the policy on that port, tls included (as for the
        # load balancer: clusters.load_balancer_for)
        port = next(
            (p for p in policy.portLevelSettings or [] if p.port and p.port.number == plan.port),
            None,
        )
        tls = port.tls if port is not None else policy.tls
        if tls is not None and tls.mode is not None:
            return str(tls.mode)
    return None


def pod_spiffe(pod: PodInstance) -> str:
    return spiffe_id(pod.namespace, service_account(pod))


def proxy_spiffe(proxy: ProxyPlan, pods: Mapping[str, PodInstance]) -> str:
    """Whose certificate a proxy presents: its pods' account, the gateway's, the client's."""
    if proxy.pods:
        return pod_spiffe(pods[proxy.pods[0]])
    if proxy.kind == "gateway":
        return spiffe_id(ISTIO_SYSTEM_NAMESPACE, GATEWAY_ACCOUNT)
    return spiffe_id(proxy.namespace, CLIENT_ACCOUNT)


def identities(proxies: MeshProxies) -> tuple[dict[str, str], set[str]]:
    """Each proxy's SPIFFE id, and every id a certificate is needed for."""
    pods = {p.name: p for p in proxies.client.plan.registry.pods}
    proxy_ids = {proxy.name: proxy_spiffe(proxy, pods) for proxy in proxies.all}
    needed = set(proxy_ids.values()) | {pod_spiffe(pods[name]) for name in proxies.meshed_pods}
    return proxy_ids, needed


def mesh_tls(proxies: MeshProxies, resources: Sequence[Resource], certs: MeshCerts) -> MeshTls:
    pods = {p.name: p for p in proxies.client.plan.registry.pods}
    proxy_ids, _ = identities(proxies)
    return MeshTls(certs, peer_policies(resources), pods, proxies.meshed_pods, proxy_ids)


def _certificate(identity: Identity) -> dict[str, Any]:
    return {
        "certificate_chain": {"filename": str(identity.certificate)},
        "private_key": {"filename": str(identity.key)},
    }


def upstream_socket(
    identity: Identity, ca: Any, accounts: Sequence[str], sni: str
) -> dict[str, Any]:
    validation: dict[str, Any] = {"trusted_ca": {"filename": str(ca)}}
    if accounts:
        validation["match_typed_subject_alt_names"] = [
            {"san_type": "URI", "matcher": {"exact": a}} for a in accounts
        ]
    return {
        "name": TLS_SOCKET,
        "typed_config": {
            "@type": _UPSTREAM,
            "sni": sni,
            "common_tls_context": {
                "alpn_protocols": ISTIO_ALPN,
                "tls_certificates": [_certificate(identity)],
                "validation_context": validation,
            },
        },
    }


def downstream_socket(identity: Identity, ca: Any) -> dict[str, Any]:
    """The inbound side's TLS: the pod's certificate; a client certificate from the mesh CA
    required (listener_inbound.go / authn buildInboundTLS: require_client_certificate)."""
    return {
        "name": TLS_SOCKET,
        "typed_config": {
            "@type": _DOWNSTREAM,
            "require_client_certificate": True,
            "common_tls_context": {
                "alpn_protocols": ["h2", "http/1.1"],
                "tls_certificates": [_certificate(identity)],
                "validation_context": {"trusted_ca": {"filename": str(ca)}},
            },
        },
    }


def inbound_chains(
    tls: MeshTls | None, pod: str, port: int, filters: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(listener filters, filter chains) of a pod's inbound side on `port` for its mode."""
    mode = "DISABLE" if tls is None else tls.inbound_mode(pod, port)
    if tls is None or mode == "DISABLE":
        return [], [{"filters": filters}]
    secure = {
        "filters": filters,
        "transport_socket": downstream_socket(tls.pod_identity(pod), tls.certs.ca),
    }
    if mode == "STRICT":
        return [], [secure]
    secure["filter_chain_match"] = {"transport_protocol": "tls"}
    plain = {"filter_chain_match": {"transport_protocol": "raw_buffer"}, "filters": filters}
    return [TLS_INSPECTOR], [secure, plain]
