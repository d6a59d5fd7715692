"""mTLS as rendered for Envoy: the clusters' transport sockets (auto mTLS, DestinationRule
`tls`), the inbound side's filter chains per mode, and the run-time certificates."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from cryptography import x509

from meshlab.backends.embedded.certs import write_mesh_certs
from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_mesh
from meshlab.backends.embedded.envoy.mtls import identities, mesh_tls
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import build_plan
from meshlab.mesh.proxies import build_proxies

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "labs" / "2-traffic" / "fleetman.yaml"
STAFF = "outbound|8080||fleetman-staff-service.default.svc.cluster.local"


def render(tmp_path: Path, extra: str = "") -> dict[str, Any]:
    files = [APP]
    if extra:
        tmp_path.mkdir(parents=True, exist_ok=True)
        (tmp_path / "extra.yaml").write_text(extra)
        files.append(tmp_path / "extra.yaml")
    resources = [r for r in load_manifests(files, "default") if r.simulated]
    proxies = build_proxies(resources, build_plan(resources, "default"))
    certs = write_mesh_certs(tmp_path / "certs", identities(proxies)[1])
    addresses = placeholder_addresses(proxies.client.plan)
    return render_mesh(proxies, addresses, tls=mesh_tls(proxies, resources, certs))


def named(config: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(o for o in config["static_resources"][kind] if o["name"] == name)
    return found


def inbound(config: dict[str, Any], pod_prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        lst
        for lst in config["static_resources"]["listeners"]
        if lst["name"].startswith(f"inbound~{pod_prefix}")
    )
    return found


def test_auto_mtls_by_default_on_endpoints_with_a_sidecar(tmp_path: Path) -> None:
    config = render(tmp_path)
    staff = named(config, "clusters", STAFF)
    matches = staff["transport_socket_matches"]
    assert [m["name"] for m in matches] == ["tlsMode-istio", "tlsMode-disabled"]
    tls = matches[0]["transport_socket"]["typed_config"]
    assert tls["sni"] == "outbound_.8080_._.fleetman-staff-service.default.svc.cluster.local"
    assert tls["common_tls_context"]["alpn_protocols"] == ["istio-peer-exchange", "istio"]
    sans = tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"]
    assert sans == [
        {"san_type": "URI", "matcher": {"exact": "spiffe://cluster.local/ns/default/sa/default"}}
    ]
    endpoints = staff["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert all(
        e["metadata"]["filter_metadata"]["envoy.transport_socket_match"] == {"tlsMode": "istio"}
        for e in endpoints
    )
    # PERMISSIVE (no policy): a TLS inspector picks the TLS or the plaintext chain
    listener = inbound(config, "staff-service")
    assert listener["listener_filters"][0]["name"] == "envoy.filters.listener.tls_inspector"
    assert [c["filter_chain_match"]["transport_protocol"] for c in listener["filter_chains"]] == [
        "tls",
        "raw_buffer",
    ]


STRICT = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
"""


def test_strict_inbound_requires_a_client_certificate(tmp_path: Path) -> None:
    listener = inbound(render(tmp_path, STRICT), "staff-service")
    assert "listener_filters" not in listener
    (chain,) = listener["filter_chains"]
    tls = chain["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    assert "trusted_ca" in tls["common_tls_context"]["validation_context"]


def rule(mode: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: staff, namespace: default}}
spec:
  host: fleetman-staff-service
  trafficPolicy: {{tls: {{mode: {mode}}}}}
"""


def test_destination_rule_tls_modes(tmp_path: Path) -> None:
    mutual = named(render(tmp_path / "a", rule("ISTIO_MUTUAL")), "clusters", STAFF)
    assert mutual["transport_socket"]["name"] == "envoy.transport_sockets.tls"
    assert "transport_socket_matches" not in mutual
    plain = named(render(tmp_path / "b", rule("DISABLE")), "clusters", STAFF)
    assert "transport_socket" not in plain
    assert "transport_socket_matches" not in plain


def test_a_namespace_policy_disable_turns_auto_mtls_off(tmp_path: Path) -> None:
    disabled = STRICT.replace("istio-system", "default").replace("STRICT", "DISABLE")
    config = render(tmp_path, disabled)
    staff = named(config, "clusters", STAFF)
    assert "transport_socket_matches" not in staff
    (chain,) = inbound(config, "staff-service")["filter_chains"]
    assert "transport_socket" not in chain


def test_certificates_carry_spiffe_ids_signed_by_the_mesh_ca(tmp_path: Path) -> None:
    spiffe = "spiffe://cluster.local/ns/default/sa/staff"
    certs = write_mesh_certs(tmp_path, [spiffe])
    identity = certs.of(spiffe)
    leaf = x509.load_pem_x509_certificates(identity.certificate.read_bytes())[0]
    ca = x509.load_pem_x509_certificate(certs.ca.read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [spiffe]
    leaf.verify_directly_issued_by(ca)
    assert stat.S_IMODE(identity.key.stat().st_mode) == 0o600
    again = write_mesh_certs(tmp_path / "again", [spiffe])
    assert again.ca.read_bytes() != certs.ca.read_bytes()  # a fresh CA every run


def test_a_ports_settings_replace_the_rules_tls_on_that_port(tmp_path: Path) -> None:
    text = rule("ISTIO_MUTUAL").replace(
        "trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}",
        "trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n"
        "    portLevelSettings:\n    - port: {number: 8080}\n      loadBalancer: {simple: RANDOM}",
    )
    staff = named(render(tmp_path, text), "clusters", STAFF)
    # no tls on the port's settings: auto mTLS there, not the rule's ISTIO_MUTUAL
    assert "transport_socket" not in staff
    assert staff["transport_socket_matches"][0]["name"] == "tlsMode-istio"


def test_every_proxy_shares_the_labs_registry_and_plans_as_if_built_alone() -> None:
    """build_proxies hands each workload's plan the client's registry (istiod has one service
    registry): the plans equal those built from scratch, and the registry is built once."""
    resources = [r for r in load_manifests([APP], "default") if r.simulated]
    proxies = build_proxies(resources, build_plan(resources, "default"))
    assert proxies.sidecars
    for sidecar in proxies.sidecars:
        assert sidecar.plan.registry is proxies.client.plan.registry
        alone = build_plan(resources, sidecar.namespace, sidecar.labels)
        assert sidecar.plan == alone
